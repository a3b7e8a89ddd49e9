//! `git-parallel`: thin entry point. Parsing lives in `cli`, work in the library.

fn main() {
    let code = git_parallel::main_with_args(std::env::args_os());
    std::process::exit(code);
}
