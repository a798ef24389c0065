/* The floor of a socket-mode crash service that saves the core: `cat` for
 * core_pattern `@@SOCKET`. It listens on SOCKET and, one connection at a
 * time, reads the kernel's request, acknowledges it (KERNEL|WAIT: the
 * kernel writes the core, then holds the process until we close), reads
 * the kernel's mark, then copies the core into DIR/core.N with plain
 * read()/write() of PIECE bytes, and closes. Nothing else: no pidfd, no
 * /proc, no snapshot, no hole detection, no record.
 *
 *   bench-socket-cat SOCKET DIR PIECE
 *
 * prints "ready" once it listens; ends on SIGTERM. The request layout is
 * Linux's include/uapi/linux/coredump.h (struct coredump_req/_ack, 6.17). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define COREDUMP_KERNEL (1ULL << 0)
#define COREDUMP_WAIT (1ULL << 3)

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void serve(int conn, const char *dir, unsigned long n, char *buf, size_t piece)
{
	uint32_t head[2];
	if (read_full(conn, head, sizeof(head)) != 0 || head[0] < 16 || head[0] > 4096)
		return;
	char request[4096];
	if (read_full(conn, request, head[0] - sizeof(head)) != 0)
		return;
	unsigned char ack[16] = {0};
	uint32_t size = 16;
	uint64_t mask = COREDUMP_KERNEL | COREDUMP_WAIT;
	memcpy(ack, &size, 4);
	memcpy(ack + 8, &mask, 8);
	uint32_t mark;
	if (write_full(conn, ack, sizeof(ack)) != 0 || read_full(conn, &mark, sizeof(mark)) != 0 || mark != 0)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/core.%lu", dir, n);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return;
	for (;;) {
		ssize_t got = read(conn, buf, piece);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (write_full(out, buf, (size_t)got) != 0)
			break;
	}
	close(out);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s SOCKET DIR PIECE\n", argv[0]);
		return 2;
	}
	size_t piece = strtoul(argv[3], NULL, 10);
	char *buf = malloc(piece);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (!buf || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(listener, 1024) != 0) {
		perror("listening");
		return 1;
	}
	umask(old);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	for (unsigned long n = 0;; n++) {
		int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		serve(conn, argv[2], n, buf, piece);
		close(conn);
	}
}
