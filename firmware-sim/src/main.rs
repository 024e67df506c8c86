//! Charger simulator. Built in its own issue; this placeholder keeps the workspace layout.
fn main() {
    eprintln!("firmware-sim: not built yet, see the project's issues");
    std::process::exit(2);
}
