// SPDX-License-Identifier: MPL-2.0
//! How long a language model takes to load and how much memory it holds:
//!
//!     cargo run --release -p quartznet-engine --example lm_load -- models/quartznet-en.arpa.gz
//!
//! Three loads: parsing the text (no cache), the first load through an empty cache (parse and
//! write the compiled copy) and the next one (read the copy): what a first and every later
//! pipeline pays. The cache is a temporary folder, not the user's. (tools/lm/README.md quotes
//! these figures for the bundled LM.)

use std::path::Path;
use std::time::Instant;

use quartznet_engine::lm::{LmCache, NgramModel};

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
    let cache_dir = tempfile::tempdir().expect("a temporary folder");
    let cache = LmCache::new(cache_dir.path());
    let mut loads = Vec::new();
    for (what, cache) in [
        ("parse", None),
        ("parse + write copy", Some(&cache)),
        ("from copy", Some(&cache)),
    ] {
        let before = rss_kb();
        let start = Instant::now();
        let lm = match NgramModel::load_cached(Path::new(&path), cache) {
            Ok(lm) => lm,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        let held = rss_kb().saturating_sub(before);
        if loads.is_empty() {
            println!(
                "{path}: order {}, {} words, {} spelling prefixes, {:.1} MB resident",
                lm.order(),
                lm.vocabulary_size(),
                lm.trie_size(),
                held as f64 / 1024.0
            );
        }
        assert_eq!(lm.loaded_from_cache(), what == "from copy");
        loads.push(format!("{what} {seconds:.3} s"));
    }
    println!("loaded in: {}", loads.join(", "));
}
