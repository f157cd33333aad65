use std::process::ExitCode;

/// mimalloc rather than the system allocator: a token request makes and
/// frees dozens of small objects (parsing, the store's bound values, the
/// response), and glibc's malloc spent 11% of an opaque token's server time
/// on them; a thread-local free list answers them in a few instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    writ::cli::main()
}
