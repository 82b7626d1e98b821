// `sqlx::migrate!` embeds ./migrations at compile time, but cargo only rebuilds when Rust
// sources change: without this, a new migration file would be missing from the next build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
