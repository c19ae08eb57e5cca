// SPDX-License-Identifier: MPL-2.0
//! How long a language model takes to load and how much memory it holds:
//!
//!     cargo run --release -p quartznet-engine --example lm_load -- models/quartznet-en.arpa.gz
//!
//! (tools/lm/README.md quotes these figures for the bundled LM.)

use std::path::Path;
use std::time::Instant;

use quartznet_engine::lm::NgramModel;

/// Resident memory of this process in kB (Linux), 0 where unknown.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: lm_load FILE.arpa[.gz]");
        std::process::exit(2);
    };
    let before = rss_kb();
    let start = Instant::now();
    let lm = match NgramModel::load(Path::new(&path)) {
        Ok(lm) => lm,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let held = rss_kb().saturating_sub(before);
    println!(
        "{path}: order {}, {} words, {} spelling prefixes; loaded in {seconds:.2} s, {:.1} MB resident",
        lm.order(),
        lm.vocabulary_size(),
        lm.trie_size(),
        held as f64 / 1024.0
    );
}
