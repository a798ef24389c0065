//! Function names as people read them: Rust and C++ symbols demangled
//! (Rust without its per-build hash), C names as they are.

/// The readable name of `symbol`, or `None` when it is not mangled.
pub fn demangle(symbol: &str) -> Option<String> {
    // Rust first: legacy Rust symbols are valid C++ mangled names too, and
    // only the Rust demangler knows to drop their hash.
    if let Ok(rust) = rustc_demangle::try_demangle(symbol) {
        // `{:#}` leaves out the `::h0123456789abcdef` hash of legacy
        // symbols and the crate disambiguators of v0 ones.
        return Some(format!("{rust:#}"));
    }
    if symbol.starts_with("_Z") {
        let parsed = cpp_demangle::Symbol::new(symbol).ok()?;
        let options = cpp_demangle::DemangleOptions::new().recursion_limit(256);
        return parsed.demangle(&options).ok();
    }
    None
}

/// `name` without the suffixes GCC and LLVM give the copies of a function
/// they specialize or split (`.isra.0`, `.constprop.1`, `.part.2`,
/// `.cold`, `.lto_priv.0`, `.llvm.123`): the same code keeps its name
/// whichever copy ran.
pub fn strip_clone_suffixes(name: &str) -> &str {
    const SUFFIXES: [&str; 7] = [
        ".isra.",
        ".constprop.",
        ".part.",
        ".cold",
        ".lto_priv.",
        ".llvm.",
        ".localalias",
    ];
    let cut = SUFFIXES
        .iter()
        .filter_map(|s| name.find(s))
        .filter(|&at| at > 0)
        .min();
    match cut {
        Some(at) => &name[..at],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_lose_their_hash_and_cpp_names_are_readable() {
        assert_eq!(
            demangle("_ZN4core9panicking5panic17h6f3a2b1c0d9e8f7aE").as_deref(),
            Some("core::panicking::panic")
        );
        assert_eq!(
            demangle("_ZN3foo3bar17h0000000000000001E"),
            demangle("_ZN3foo3bar17hffffffffffffffffE")
        );
        assert_eq!(demangle("_Z3fooi").as_deref(), Some("foo(int)"));
        assert_eq!(demangle("main"), None);
        assert_eq!(demangle("_Zgarbage"), None);
    }

    #[test]
    fn clone_suffixes_are_dropped() {
        assert_eq!(strip_clone_suffixes("parse.isra.0"), "parse");
        assert_eq!(strip_clone_suffixes("f.constprop.3.cold"), "f");
        assert_eq!(strip_clone_suffixes("plain"), "plain");
        assert_eq!(strip_clone_suffixes(".cold"), ".cold");
    }
}
