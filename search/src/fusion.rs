//! Cross-source ranking: weighted reciprocal-rank fusion, a boost for trusted documentation
//! domains, and deduplication by normalised URL and by near-identical text.

use std::collections::HashMap;

use crate::hit::Hit;
use crate::urlnorm::{host_matches, host_of};

/// How lists are fused.
#[derive(Debug, Clone)]
pub struct FusionParams {
    /// The `k` of reciprocal-rank fusion: larger flattens the advantage of the top ranks.
    pub rrf_k: f32,
    /// Weight per source name (`code`, `docs`, `web:serper`, …); absent means 1.
    pub source_weights: HashMap<String, f32>,
    /// Domains whose pages are boosted (subdomains included).
    pub trusted_domains: Vec<String>,
    /// Multiplier applied to the fused score of a trusted-domain hit.
    pub trusted_boost: f32,
    /// Largest Hamming distance between two texts' simhashes for them to count as one.
    pub near_duplicate_bits: u32,
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            rrf_k: 60.0,
            source_weights: HashMap::new(),
            trusted_domains: default_trusted_domains(),
            trusted_boost: 1.25,
            near_duplicate_bits: 3,
        }
    }
}

/// Documentation and Q&A sites that answer programming questions reliably.
pub fn default_trusted_domains() -> Vec<String> {
    [
        "docs.rs",
        "doc.rust-lang.org",
        "rust-lang.org",
        "docs.python.org",
        "developer.mozilla.org",
        "go.dev",
        "pkg.go.dev",
        "nodejs.org",
        "typescriptlang.org",
        "docs.oracle.com",
        "cppreference.com",
        "ruby-doc.org",
        "hexdocs.pm",
        "github.com",
        "stackoverflow.com",
    ]
    .iter()
    .map(|domain| domain.to_string())
    .collect()
}

/// One source's ranked hits.
#[derive(Debug, Clone)]
pub struct RankedList {
    pub source: String,
    pub hits: Vec<Hit>,
}

/// Fuses `lists` into one ranking of at most `limit` hits, each with its fused score.
pub fn fuse(lists: &[RankedList], params: &FusionParams, limit: usize) -> Vec<Hit> {
    let mut fused: HashMap<String, (f32, Hit)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for list in lists {
        let weight = params
            .source_weights
            .get(&list.source)
            .copied()
            .unwrap_or(1.0);
        let mut seen_in_list = std::collections::HashSet::new();
        for (index, hit) in list.hits.iter().enumerate() {
            let key = hit.key();
            // A source listing the same page twice does not vote twice.
            if !seen_in_list.insert(key.clone()) {
                continue;
            }
            let contribution = weight / (params.rrf_k + (index + 1) as f32);
            match fused.get_mut(&key) {
                Some(entry) => entry.0 += contribution,
                None => {
                    order.push(key.clone());
                    fused.insert(key, (contribution, hit.clone()));
                }
            }
        }
    }
    let mut ranked: Vec<(f32, Hit)> = order
        .into_iter()
        .filter_map(|key| fused.remove(&key))
        .map(|(score, hit)| {
            let trusted = hit
                .locator
                .url
                .as_deref()
                .and_then(host_of)
                .is_some_and(|host| {
                    params
                        .trusted_domains
                        .iter()
                        .any(|domain| host_matches(&host, domain))
                });
            let boosted = if trusted {
                score * params.trusted_boost
            } else {
                score
            };
            (boosted, hit)
        })
        .collect();
    // Stable sort: equal scores keep first-seen order, so results are deterministic.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut kept: Vec<(u64, Hit)> = Vec::new();
    for (score, mut hit) in ranked {
        let fingerprint = simhash(&hit.snippet);
        let duplicate = hit.snippet.len() >= 40
            && kept.iter().any(|(other, kept_hit)| {
                kept_hit.snippet.len() >= 40
                    && (fingerprint ^ other).count_ones() <= params.near_duplicate_bits
            });
        if duplicate {
            continue;
        }
        hit.score = score;
        kept.push((fingerprint, hit));
        if kept.len() == limit {
            break;
        }
    }
    kept.into_iter().map(|(_, hit)| hit).collect()
}

/// 64-bit simhash of the text's word trigrams (lowercased alphanumeric words).
pub fn simhash(text: &str) -> u64 {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut counts = [0i32; 64];
    let mut add = |feature: &str| {
        let hash = fnv1a(feature.as_bytes());
        for (bit, count) in counts.iter_mut().enumerate() {
            if hash >> bit & 1 == 1 {
                *count += 1;
            } else {
                *count -= 1;
            }
        }
    };
    if words.len() < 3 {
        for word in &words {
            add(word);
        }
    } else {
        for window in words.windows(3) {
            add(&window.join(" "));
        }
    }
    counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .fold(0u64, |acc, (bit, _)| acc | 1 << bit)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn web(source: &str, url: &str, snippet: &str) -> Hit {
        Hit::web(source, url, url, snippet, 1.0)
    }

    fn list(source: &str, hits: Vec<Hit>) -> RankedList {
        RankedList {
            source: source.to_string(),
            hits,
        }
    }

    #[test]
    fn dedups_urls_and_near_duplicates_and_boosts_trusted() {
        let params = FusionParams::default();
        let a = list(
            "web:serper",
            vec![
                web(
                    "web:serper",
                    "https://blog.example.com/mutex",
                    "a blog post about sharing state between threads with a mutex in rust",
                ),
                web(
                    "web:serper",
                    "https://doc.rust-lang.org/book/ch16-03-shared-state.html",
                    "shared state concurrency in rust uses mutex and arc",
                ),
            ],
        );
        let b = list(
            "web:tavily",
            vec![
                web(
                    "web:tavily",
                    "http://www.doc.rust-lang.org/book/ch16-03-shared-state.html#using-mutexes",
                    "shared state concurrency in rust uses mutex and arc",
                ),
                web(
                    "web:tavily",
                    "https://mirror.example.org/copy",
                    "a blog post about sharing state between threads with a mutex in rust!",
                ),
            ],
        );
        let fused = fuse(&[a, b], &params, 10);
        assert_eq!(fused.len(), 2, "{fused:#?}");
        assert!(fused[0]
            .locator
            .url
            .as_deref()
            .is_some_and(|u| u.contains("rust-lang.org")));
    }

    fn arbitrary_lists() -> impl Strategy<Value = Vec<RankedList>> {
        proptest::collection::vec(
            (
                "(code|docs|web:serper)",
                proptest::collection::vec(0u8..12, 0..8),
            ),
            0..4,
        )
        .prop_map(|lists| {
            lists
                .into_iter()
                .map(|(source, ids)| {
                    let hits = ids
                        .into_iter()
                        .map(|id| {
                            web(
                                &source,
                                &format!("https://site{id}.test/page"),
                                &format!("text number {id} unique words {id}"),
                            )
                        })
                        .collect();
                    list(&source, hits)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn fused_output_is_bounded_unique_and_sorted(lists in arbitrary_lists(), limit in 1usize..10) {
            let params = FusionParams { near_duplicate_bits: 0, ..FusionParams::default() };
            let fused = fuse(&lists, &params, limit);
            prop_assert!(fused.len() <= limit);
            let mut keys: Vec<String> = fused.iter().map(Hit::key).collect();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(keys.len(), fused.len());
            for pair in fused.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
        }

        #[test]
        fn a_hit_first_everywhere_is_first(lists in arbitrary_lists()) {
            let champion = web("web:serper", "https://champion.test/", "the champion result text");
            let lists: Vec<RankedList> = lists
                .into_iter()
                .map(|mut list| { list.hits.insert(0, champion.clone()); list })
                .collect();
            prop_assume!(!lists.is_empty());
            let params = FusionParams { trusted_domains: Vec::new(), ..FusionParams::default() };
            let fused = fuse(&lists, &params, 5);
            prop_assert_eq!(fused[0].key(), champion.key());
        }

        #[test]
        fn source_order_does_not_change_the_set(lists in arbitrary_lists()) {
            let params = FusionParams { near_duplicate_bits: 0, ..FusionParams::default() };
            let forward = fuse(&lists, &params, 100);
            let mut reversed_lists = lists.clone();
            reversed_lists.reverse();
            let backward = fuse(&reversed_lists, &params, 100);
            let mut a: Vec<String> = forward.iter().map(Hit::key).collect();
            let mut b: Vec<String> = backward.iter().map(Hit::key).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }
    }
}
