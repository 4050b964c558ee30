//! Research evaluation: two sets of questions over the Rust book as a docs collection, no LLM, no
//! network: the public one (`../shared/eval/research/questions.jsonl`) and a second one on other
//! chapters (`benches/eval/research-second.jsonl`), so that a change is seen on questions it was
//! not tuned on; `AIEX_EVAL_SETS` (`public,second`, the default) picks. Prints per question and
//! per set: citation
//! validity (every `[n]` resolves to a retrieved passage), evidence recall (a cited passage comes
//! from an expected page), term coverage (the cited passages hold every expected term), citation
//! precision (the cited passage holds at least half of the key terms of the claim before its
//! `[n]`), time to first event, time per stage and total time.
//!
//! `scripts/setup --with-rust-doc && cargo bench -p aiex-benches --bench research`

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use aiex_research::{EventKind, ResearchEngine, ResearchRequest};

#[derive(Debug, Deserialize)]
struct Question {
    id: u64,
    question: String,
    pages: Vec<String>,
    terms: Vec<String>,
}

fn questions(set: &str) -> Vec<Question> {
    let path = match set {
        "public" => aiex_benches::eval_dir().join("research/questions.jsonl"),
        "second" => {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/research-second.jsonl")
        }
        other => panic!("unknown evaluation set {other}: public or second"),
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a question per line"))
        .collect()
}

/// Every `[n]` of a text.
fn cited(text: &str, out: &mut BTreeSet<usize>) {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        if let Ok(n) = after[..close].parse::<usize>() {
            out.insert(n);
        }
        rest = &after[close..];
    }
}

/// The claims of a text with the citation that follows each: the text between the previous
/// citation (or line start) and a `[n]`, cut to its last sentence.
fn claims(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let mut rest = line;
        let mut offset = 0;
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            if let Ok(n) = after[..close].parse::<usize>() {
                let claim = &line[start..offset + open];
                let sentence = claim
                    .trim_end()
                    .trim_end_matches(['.', ',', ';', ':'])
                    .rsplit(". ")
                    .next()
                    .unwrap_or("");
                out.push((sentence.to_string(), n));
                start = offset + open + 1 + close + 1;
            }
            offset += open + 1 + close + 1;
            rest = &line[offset..];
        }
    }
    out
}

/// Content words of a claim: lowercase, 4+ characters, not a common English word.
fn key_terms(claim: &str) -> BTreeSet<String> {
    const STOP: &[&str] = &[
        "that", "this", "with", "from", "have", "will", "when", "what", "which", "there", "their",
        "they", "them", "then", "than", "into", "also", "some", "only", "more", "most", "such",
        "each", "other", "these", "those", "your", "about", "would", "could", "should", "does",
        "because", "while", "where", "here", "just", "like", "make", "made", "used", "using",
    ];
    claim
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .map(str::to_lowercase)
        .filter(|word| word.chars().count() >= 4 && !STOP.contains(&word.as_str()))
        .collect()
}

fn main() {
    println!("research benchmark; machine: {}", aiex_benches::machine());
    let Some(book) = aiex_benches::rust_book() else {
        println!("the Rust book is not installed: run `scripts/setup --with-rust-doc`");
        return;
    };
    // The coordinator benchmark indexes the book into the same directory: indexed once.
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    let summary = aiex_benches::ensure_docs_indexed(&data_dir, &book, "rust-book");
    println!("docs: the Rust book, {} chunks", summary.chunks);
    let config = aiex_benches::config(&data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine =
        Arc::new(ResearchEngine::from_config(&config, &["rust-book".to_string()]).expect("engine"));
    for set in aiex_benches::picked("AIEX_EVAL_SETS", &["public", "second"]) {
        let questions = questions(&set);
        println!("\n== {set} set: {} questions ==", questions.len());
        evaluate(&questions, &engine, &runtime);
    }
    println!("peak RSS {:.0} MiB", aiex_benches::peak_rss_mib());
}

/// Researches every question of a set and prints its table and figures.
fn evaluate(
    questions: &[Question],
    engine: &Arc<ResearchEngine>,
    runtime: &tokio::runtime::Runtime,
) {
    let (mut valid, mut citations, mut recalled, mut covered) = (0usize, 0usize, 0usize, 0usize);
    let (mut claims_checked, mut claims_supported) = (0usize, 0usize);
    let mut first_event_ms = Vec::new();
    let mut totals_ms = Vec::new();
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    println!("\n  id  valid  recall  terms  first-ms  total-ms  question");
    for question in questions {
        let started = Instant::now();
        let (report, first, per_stage) = runtime.block_on(async {
            let mut handle = engine
                .start(ResearchRequest {
                    question: question.question.clone(),
                    collections: vec!["rust-book".to_string()],
                    depth: 1,
                    template: None,
                    sources: vec![],
                })
                .expect("start");
            let mut first = None;
            let mut per_stage = Vec::new();
            while let Ok(event) = handle.events.recv().await {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                if let EventKind::StageCompleted { stage, took_ms, .. } = event.kind {
                    per_stage.push((stage.name().to_string(), took_ms as f64));
                }
            }
            let report = handle.wait().await.expect("research").expect("report");
            (report, first.unwrap_or(0.0), per_stage)
        });
        let total = started.elapsed().as_secs_f64() * 1000.0;
        let mut numbers = BTreeSet::new();
        cited(&report.summary, &mut numbers);
        for section in &report.sections {
            cited(&section.body, &mut numbers);
        }
        let resolved: Vec<_> = numbers
            .iter()
            .filter_map(|n| report.references.iter().find(|r| r.n == *n))
            .collect();
        for text in std::iter::once(&report.summary).chain(report.sections.iter().map(|s| &s.body))
        {
            for (claim, n) in claims(text) {
                let terms = key_terms(&claim);
                if terms.is_empty() {
                    continue;
                }
                claims_checked += 1;
                let Some(reference) = report.references.iter().find(|r| r.n == n) else {
                    continue;
                };
                let passage = reference.excerpt.to_lowercase();
                let found = terms
                    .iter()
                    .filter(|term| passage.contains(term.as_str()))
                    .count();
                claims_supported += usize::from(2 * found >= terms.len());
            }
        }
        citations += numbers.len();
        valid += resolved.len();
        let recall = resolved.iter().any(|reference| {
            reference
                .locator
                .path
                .as_deref()
                .is_some_and(|path| question.pages.iter().any(|page| page == path))
        });
        let cited_text: String = resolved
            .iter()
            .map(|reference| reference.excerpt.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let coverage = question
            .terms
            .iter()
            .all(|term| cited_text.contains(&term.to_lowercase()));
        recalled += usize::from(recall);
        covered += usize::from(coverage);
        first_event_ms.push(first);
        totals_ms.push(total);
        for (stage, ms) in per_stage {
            stages.entry(stage).or_default().push(ms);
        }
        println!(
            "  {:>2}  {:>2}/{:<2}  {:<6}  {:<5}  {:>8.1}  {:>8.0}  {}",
            question.id,
            resolved.len(),
            numbers.len(),
            if recall { "yes" } else { "no" },
            if coverage { "yes" } else { "no" },
            first,
            total,
            question.question
        );
    }
    let n = questions.len().max(1) as f64;
    println!(
        "\ncitation validity {:.1}% ({valid}/{citations}); evidence recall {:.0}%; term coverage {:.0}%",
        100.0 * valid as f64 / citations.max(1) as f64,
        100.0 * recalled as f64 / n,
        100.0 * covered as f64 / n
    );
    println!(
        "citation precision {:.1}% ({claims_supported}/{claims_checked} cited claims whose passage holds at least half of their key terms)",
        100.0 * claims_supported as f64 / claims_checked.max(1) as f64
    );
    println!(
        "time to first event p50 {:.1} ms; total p50 {:.0} ms, p90 {:.0} ms",
        aiex_benches::percentile(&first_event_ms, 50.0),
        aiex_benches::percentile(&totals_ms, 50.0),
        aiex_benches::percentile(&totals_ms, 90.0)
    );
    for (stage, values) in &stages {
        println!(
            "  stage {stage:<10} p50 {:>7.0} ms  max {:>7.0} ms",
            aiex_benches::percentile(values, 50.0),
            values.iter().copied().fold(0.0, f64::max)
        );
    }
}
