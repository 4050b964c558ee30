//! The grammatical form of a question, so the deterministic planner can ask sub-questions a
//! person would write: "How are chunks embedded and written to the vector store?" is a process
//! whose statement is "chunks are embedded and written to the vector store", which reads well in
//! "Which functions and types are involved when …?"; "How do I configure X?" is a task that reads
//! well in "Is there an example of how to …?".

/// What a question asks, with the words its sub-questions reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// "How do I …", "How can we …", "How to …": the task, from its verb on.
    Task(String),
    /// "How does X work": the thing.
    Works(String),
    /// "How/why AUX SUBJECT …" as a statement ("chunks are embedded …"); `why` for why-questions.
    Process { statement: String, why: bool },
    /// "What is/are X": the thing, and `is` or `are`.
    Definition { thing: String, verb: String },
    /// "Where is/does …" as a statement ("the lease is renewed").
    Location(String),
    /// "Is/does/can X …?" (yes or no) as a statement ("the HNSW index is rebuilt …").
    Check(String),
    /// A question about a failure ("why does X panic …") as a statement.
    Failure(String),
}

const BE: &[&str] = &["is", "are", "was", "were"];
const HAVE: &[&str] = &["has", "have", "had"];
const DO: &[&str] = &["does", "do", "did"];
const MODAL: &[&str] = &[
    "can", "could", "should", "would", "will", "may", "might", "must",
];
const DETERMINERS: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "my", "our", "your", "its", "their",
    "each", "every",
];
const PRONOUNS: &[&str] = &["i", "we", "you", "one"];
/// Participles that do not end in -ed, -en or -ing.
const IRREGULAR_PARTICIPLES: &[&str] = &[
    "built", "run", "made", "kept", "found", "held", "done", "read", "sent", "set", "split", "put",
    "cut", "shut", "known", "shown", "thrown", "bound", "brought", "caught", "taught", "left",
    "lost", "met", "paid", "said", "sold", "told", "won", "spent", "struck", "hit", "let", "laid",
    "led", "fed", "fit", "shed", "spread", "cast", "dealt", "meant",
];
/// Verbs a question about code often asks about after its subject ("how does X <verb> …").
const VERBS: &[&str] = &[
    "add",
    "allocate",
    "apply",
    "assign",
    "avoid",
    "build",
    "cache",
    "call",
    "change",
    "check",
    "choose",
    "chunk",
    "clean",
    "close",
    "collect",
    "combine",
    "compare",
    "compile",
    "compute",
    "connect",
    "convert",
    "copy",
    "count",
    "crawl",
    "create",
    "decide",
    "decode",
    "dedupe",
    "deduplicate",
    "delete",
    "detect",
    "distribute",
    "drop",
    "embed",
    "encode",
    "ensure",
    "execute",
    "expire",
    "extract",
    "fail",
    "fetch",
    "fill",
    "filter",
    "find",
    "finish",
    "fix",
    "flush",
    "format",
    "fuse",
    "generate",
    "get",
    "grow",
    "guarantee",
    "handle",
    "hash",
    "hold",
    "ignore",
    "implement",
    "index",
    "insert",
    "keep",
    "know",
    "limit",
    "load",
    "lock",
    "log",
    "look",
    "make",
    "manage",
    "map",
    "match",
    "measure",
    "merge",
    "move",
    "open",
    "order",
    "parse",
    "pass",
    "pick",
    "prevent",
    "process",
    "produce",
    "protect",
    "rank",
    "read",
    "recover",
    "reduce",
    "refresh",
    "reject",
    "release",
    "reload",
    "remove",
    "render",
    "replace",
    "report",
    "resolve",
    "respond",
    "restart",
    "resume",
    "retry",
    "return",
    "reuse",
    "run",
    "save",
    "scale",
    "schedule",
    "score",
    "search",
    "select",
    "send",
    "serve",
    "set",
    "share",
    "sort",
    "split",
    "start",
    "stop",
    "store",
    "stream",
    "support",
    "sync",
    "take",
    "tell",
    "test",
    "track",
    "transform",
    "trigger",
    "update",
    "use",
    "validate",
    "verify",
    "wait",
    "walk",
    "work",
    "write",
];

/// Words that start the predicate after "is/are SUBJECT": adverbs, prepositions, common adjectives.
const PREDICATE_STARTS: &[&str] = &[
    "so",
    "too",
    "very",
    "not",
    "still",
    "always",
    "never",
    "sometimes",
    "often",
    "only",
    "much",
    "more",
    "less",
    "in",
    "on",
    "at",
    "for",
    "from",
    "to",
    "with",
    "by",
    "after",
    "before",
    "when",
    "while",
    "during",
    "over",
    "under",
    "slow",
    "slower",
    "fast",
    "faster",
    "large",
    "larger",
    "small",
    "smaller",
    "big",
    "bigger",
    "empty",
    "missing",
    "different",
    "necessary",
    "needed",
    "required",
    "possible",
    "important",
    "useful",
    "safe",
    "unsafe",
    "correct",
    "wrong",
    "stale",
];

fn lower(word: &str) -> String {
    word.to_lowercase()
}

fn participle(word: &str) -> bool {
    let word = lower(word);
    (word.len() > 4 && (word.ends_with("ed") || word.ends_with("en") || word.ends_with("ing")))
        || IRREGULAR_PARTICIPLES.contains(&word.as_str())
        || ["re", "un", "pre", "over"].iter().any(|prefix| {
            word.strip_prefix(prefix)
                .is_some_and(|rest| IRREGULAR_PARTICIPLES.contains(&rest))
        })
}

/// Where the predicate starts in `rest` (the words after the auxiliary): at the first
/// participle (after `be`/`have`) or known verb (after `do` or a modal), else after a
/// determiner and its noun, else after the first word.
fn predicate_start(aux: &str, rest: &[&str]) -> usize {
    let verb_like = |word: &str| {
        if BE.contains(&aux) || HAVE.contains(&aux) {
            participle(word)
        } else {
            VERBS.contains(&lower(word).as_str())
        }
    };
    // A determiner is followed by at least its noun; a verb followed by another verb-like word
    // is taken for a noun ("the search coordinator fuses", "index search ranks").
    let first = if DETERMINERS.contains(&lower(rest[0]).as_str()) {
        2
    } else {
        1
    };
    let found = (first..rest.len())
        .find(|&at| verb_like(rest[at]) && rest.get(at + 1).is_none_or(|next| !verb_like(next)));
    if let Some(at) = found {
        return at;
    }
    if BE.contains(&aux) {
        // "why is the keyword index so large": the predicate starts at an adverb, a preposition
        // or a common adjective, else it is the last word.
        let starts =
            (first..rest.len()).find(|&at| PREDICATE_STARTS.contains(&lower(rest[at]).as_str()));
        if let Some(at) = starts.or((rest.len() > first).then(|| rest.len() - 1)) {
            return at;
        }
    }
    if rest.len() > 2 && DETERMINERS.contains(&lower(rest[0]).as_str()) {
        2
    } else {
        1.min(rest.len())
    }
}

/// The third person singular of a verb ("fuse" → "fuses", "match" → "matches").
fn third_person(verb: &str) -> String {
    let lower = lower(verb);
    if lower == "have" {
        return "has".to_string();
    }
    if lower.ends_with('y')
        && !lower.ends_with("ay")
        && !lower.ends_with("ey")
        && !lower.ends_with("oy")
        && !lower.ends_with("uy")
    {
        return format!("{}ies", &verb[..verb.len() - 1]);
    }
    if ["s", "sh", "ch", "x", "z", "o"]
        .iter()
        .any(|end| lower.ends_with(end))
    {
        return format!("{verb}es");
    }
    format!("{verb}s")
}

/// "AUX SUBJECT PREDICATE" as the statement "SUBJECT AUX PREDICATE" (with `does`, the verb
/// takes its -s; with `do` and `did`, the auxiliary goes).
fn statement(aux: &str, rest: &[&str]) -> Option<String> {
    let at = predicate_start(aux, rest);
    if at == 0 || at >= rest.len() {
        return None;
    }
    let subject = rest[..at].join(" ");
    let predicate = &rest[at..];
    let text = match aux {
        "does" => {
            let verb = third_person(predicate[0]);
            let tail = predicate[1..].join(" ");
            format!("{subject} {verb} {tail}")
        }
        "do" | "did" => format!("{subject} {}", predicate.join(" ")),
        _ => format!("{subject} {aux} {}", predicate.join(" ")),
    };
    Some(text.trim().to_string())
}

/// The form of `question`, when it has one the planner knows.
pub fn form(question: &str) -> Option<Form> {
    let text = question.trim().trim_end_matches(['?', '.', '!']).trim();
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let word = |at: usize| tokens.get(at).map(|w| lower(w)).unwrap_or_default();
    let from = |at: usize| tokens.get(at..).map(|w| w.join(" ")).unwrap_or_default();
    let (first, second) = (word(0), word(1));
    match first.as_str() {
        "how" if second == "to" && tokens.len() > 2 => Some(Form::Task(from(2))),
        "how"
            if (DO.contains(&second.as_str()) || MODAL.contains(&second.as_str()))
                && PRONOUNS.contains(&word(2).as_str())
                && tokens.len() > 3 =>
        {
            Some(Form::Task(from(3)))
        }
        "how"
            if DO.contains(&second.as_str())
                && matches!(word(tokens.len() - 1).as_str(), "work" | "works")
                && tokens.len() > 3 =>
        {
            Some(Form::Works(tokens[2..tokens.len() - 1].join(" ")))
        }
        "how" | "why" if is_aux(&second) && tokens.len() > 3 => statement(&second, &tokens[2..])
            .map(|statement| Form::Process {
                statement,
                why: first == "why",
            }),
        "what" if BE.contains(&second.as_str()) && tokens.len() > 2 => {
            let thing = from(2);
            (!thing.to_lowercase().starts_with("the difference")).then_some(Form::Definition {
                thing,
                verb: if second == "are" || second == "were" {
                    "are"
                } else {
                    "is"
                }
                .to_string(),
            })
        }
        "where" if is_aux(&second) && tokens.len() > 3 => {
            statement(&second, &tokens[2..]).map(Form::Location)
        }
        aux if is_aux(aux) && tokens.len() > 2 => statement(aux, &tokens[1..]).map(Form::Check),
        _ => None,
    }
}

fn is_aux(word: &str) -> bool {
    BE.contains(&word) || HAVE.contains(&word) || DO.contains(&word) || MODAL.contains(&word)
}

/// A failure question's form: its statement, when the question has one.
pub fn failure(form: Form) -> Form {
    match form {
        Form::Process { statement, .. } | Form::Check(statement) | Form::Location(statement) => {
            Form::Failure(statement)
        }
        other => other,
    }
}

/// The (heading, sub-question) drafts that follow the question itself, for its form.
pub fn drafts(form: &Form) -> Vec<(String, String)> {
    let draft = |heading: &str, text: String| (heading.to_string(), text);
    match form {
        Form::Task(task) => vec![
            draft(
                "Relevant APIs",
                format!("Which functions, types or settings are used to {task}?"),
            ),
            draft("Example", format!("Is there an example of how to {task}?")),
            draft(
                "Pitfalls",
                format!("What can go wrong when trying to {task}?"),
            ),
        ],
        Form::Works(thing) => vec![
            draft("Purpose", format!("What is {thing} for?")),
            draft(
                "Where in the code",
                format!("Which functions and types make up {thing}?"),
            ),
            draft(
                "Call flow",
                format!("In what order are the steps of {thing} called?"),
            ),
        ],
        Form::Process {
            statement,
            why: false,
        } => vec![
            draft(
                "Where in the code",
                format!("Which functions and types are involved when {statement}?"),
            ),
            draft(
                "Call flow",
                format!("In what order are the steps called when {statement}?"),
            ),
        ],
        Form::Process {
            statement,
            why: true,
        } => vec![
            draft(
                "Where in the code",
                format!("Which code decides that {statement}?"),
            ),
            draft(
                "Design",
                format!("What documentation or design notes explain why {statement}?"),
            ),
        ],
        Form::Definition { thing, verb } => vec![
            draft("Purpose", format!("What {verb} {thing} used for?")),
            draft(
                "Where in the code",
                format!("Where {verb} {thing} defined or implemented?"),
            ),
            draft("Example", format!("Is there an example of {thing} in use?")),
        ],
        Form::Check(statement) => vec![
            draft(
                "Where in the code",
                format!("Which functions and types are involved when {statement}?"),
            ),
            draft(
                "Documentation",
                format!("What do the documentation and comments say about whether {statement}?"),
            ),
        ],
        Form::Failure(statement) => vec![
            draft(
                "Where in the code",
                format!("Which code runs when {statement}?"),
            ),
            draft("Fixes", format!("How can it be avoided that {statement}?")),
        ],
        Form::Location(statement) => vec![
            draft(
                "Callers",
                format!("Which code calls the place where {statement}?"),
            ),
            draft(
                "Call flow",
                format!("In what order are the steps called when {statement}?"),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_statements() {
        assert_eq!(
            form("How are chunks embedded and written to the vector store?"),
            Some(Form::Process {
                statement: "chunks are embedded and written to the vector store".into(),
                why: false
            })
        );
        assert_eq!(
            form("How does the search coordinator fuse results from sources?"),
            Some(Form::Process {
                statement: "the search coordinator fuses results from sources".into(),
                why: false
            })
        );
        assert_eq!(
            form("How do I configure a Qdrant cluster?"),
            Some(Form::Task("configure a Qdrant cluster".into()))
        );
        assert_eq!(
            form("How to retry a failed request"),
            Some(Form::Task("retry a failed request".into()))
        );
        assert_eq!(
            form("How does the indexing lease work?"),
            Some(Form::Works("the indexing lease".into()))
        );
        assert_eq!(
            form("Why is the keyword index so large?"),
            Some(Form::Process {
                statement: "the keyword index is so large".into(),
                why: true
            })
        );
        assert_eq!(
            form("What are research templates?"),
            Some(Form::Definition {
                thing: "research templates".into(),
                verb: "are".into()
            })
        );
        assert_eq!(
            form("Is the HNSW index rebuilt after every upsert?"),
            Some(Form::Check(
                "the HNSW index is rebuilt after every upsert".into()
            ))
        );
        assert_eq!(form("What is the difference between Rc and Arc?"), None);
        assert_eq!(
            form("Where is the lease renewed?"),
            Some(Form::Location("the lease is renewed".into()))
        );
        assert_eq!(third_person("match"), "matches");
        assert_eq!(third_person("carry"), "carries");
        assert_eq!(third_person("play"), "plays");
    }
}
