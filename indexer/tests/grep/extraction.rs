//! Trigram extraction never loses a true match: whenever a pattern matches a text, the text's
//! trigrams satisfy the pattern's trigram condition.

use aiex_indexer::grep::trigrams::text_trigrams;
use aiex_indexer::grep::{CaseMode, Pattern, PatternOptions};
use proptest::prelude::*;

/// Small regexes over a small alphabet (with case and Unicode folding pairs), so that matches
/// are frequent.
fn pattern_strategy() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("K".to_string()),
        Just("ſ".to_string()),
        Just("s".to_string()),
        Just("abc".to_string()),
        Just("bca".to_string()),
        Just("[ab]".to_string()),
        Just("[^a]".to_string()),
        Just(".".to_string()),
        Just(r"\w".to_string()),
        Just(r"\s".to_string()),
        Just(r"\b".to_string()),
        Just("^".to_string()),
        Just("$".to_string()),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| parts.concat()),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
            (
                inner.clone(),
                prop_oneof![Just("*"), Just("+"), Just("?"), Just("{2}"), Just("{1,3}")]
            )
                .prop_map(|(a, op)| format!("(?:{a}){op}")),
            inner.prop_map(|a| format!("(?i:{a})")),
        ]
    })
}

fn case_strategy() -> impl Strategy<Value = CaseMode> {
    prop_oneof![
        Just(CaseMode::Sensitive),
        Just(CaseMode::Insensitive),
        Just(CaseMode::Smart)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_match_always_satisfies_the_trigram_condition(
        pattern in pattern_strategy(),
        case in case_strategy(),
        word in any::<bool>(),
        fixed in any::<bool>(),
        text in "[abcksKS\u{17f}\u{212a} \n]{0,40}",
    ) {
        let options = PatternOptions { fixed, case, word };
        let Ok(compiled) = Pattern::new(&pattern, options) else {
            return Ok(());
        };
        if compiled.regex.is_match(&text) {
            prop_assert!(
                compiled.trigrams.matches(&text_trigrams(&text)),
                "pattern {:?} ({:?}) matches {:?} but its condition {:?} rejects it",
                pattern, options, text, compiled.trigrams
            );
        }
    }
}
