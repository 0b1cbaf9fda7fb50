//! Prints the wire cost of each coherence event next to the minimum, as
//! the Markdown table kept in `docs/benchmarks/coherence.md`.
//!
//! Run: `cargo run -p sinter-coherence-protocol --example wire_cost`.

use sinter_coherence_protocol::scenario;

fn main() {
    match scenario::run_all() {
        Ok(rows) => print!("{}", scenario::markdown_table(&rows)),
        Err(violation) => {
            eprintln!("a scenario broke an invariant: {violation:?}");
            std::process::exit(1);
        }
    }
}
