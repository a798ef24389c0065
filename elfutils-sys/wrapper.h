/* The parts of elfutils the crash report uses: libelf (the core as an ELF
 * file), libdwfl/libdw (modules, threads, frames, symbols and source lines
 * of a core), libdwelf, and libdebuginfod (symbols fetched by build-id). */
#include <libelf.h>
#include <gelf.h>
#include <elfutils/version.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <elfutils/libdwelf.h>
#include <elfutils/debuginfod.h>
