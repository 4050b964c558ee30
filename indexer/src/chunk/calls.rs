//! The functions a piece of code calls, read off its tree-sitter syntax tree: what research
//! follows to walk a flow from one function to the next.

use tree_sitter::Node;

use super::treesitter;
use crate::lang::Language;

/// Names returned at most: a long function's first calls are the ones that matter.
const MAX_CALLS: usize = 64;
/// Longest receiver text kept (the end of a longer one).
const MAX_RECEIVER_BYTES: usize = 80;

/// One function or method called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The callee's last name segment.
    pub name: String,
    /// What it is called on or through, as written (`self.vectors` in `self.vectors.upsert(..)`,
    /// `VectorStore` in `VectorStore::upsert(..)`); the first call's, when there are several.
    pub receiver: Option<String>,
}

/// The names of the functions and methods `source` calls, in the order of their first call, each
/// once: the last segment of the callee (`embed_pending` for `self.embed_pending()`, `upsert` for
/// `VectorStore::upsert(..)` or `store.upsert(..)`). Macros and constructors of tuple structs are
/// not calls; a language without a grammar has none. `source` may be a fragment (a method without
/// its `impl`, a part of a function): the parser recovers around what is missing, and a common
/// indentation is removed first so an indented Python method parses.
pub fn called_names(language: Language, source: &str) -> Vec<String> {
    calls(language, source)
        .into_iter()
        .map(|call| call.name)
        .collect()
}

/// The calls of `source` as [`called_names`] finds them, each with what it is called on.
pub fn calls(language: Language, source: &str) -> Vec<Call> {
    let dedented = dedent(source);
    let Some(tree) = treesitter::parse(language, &dedented) else {
        return Vec::new();
    };
    let mut calls: Vec<Call> = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if calls.len() >= MAX_CALLS {
            break;
        }
        let found = callee(node).and_then(|(callee, receiver)| {
            let (name, inner) = name_of(callee, &dedented)?;
            Some((name, receiver.or(inner)))
        });
        if let Some((name, receiver)) = found.filter(|(name, _)| is_function_name(language, name)) {
            if !calls.iter().any(|known| known.name == name) {
                calls.push(Call {
                    name: name.to_owned(),
                    receiver: receiver.and_then(|node| receiver_text(node, &dedented)),
                });
            }
        }
        // Children in reverse so the walk visits them in source order.
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    calls
}

/// The functions and methods `source` defines, each with the line (0-based) where its
/// definition starts, in source order: `fn`, `def`, `func`, `function` and method declarations of
/// the supported grammars (a small type's chunk holds its methods).
pub fn definitions(language: Language, source: &str) -> Vec<(String, usize)> {
    let dedented = dedent(source);
    let Some(tree) = treesitter::parse(language, &dedented) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if DEFINITION_KINDS.contains(&node.kind()) {
            let name = node
                .child_by_field_name("name")
                .or_else(|| declared_name(node))
                .and_then(|name| name_of(name, &dedented))
                .map(|(name, _)| name);
            if let Some(name) = name {
                found.push((name.to_owned(), node.start_position().row));
            }
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    found
}

/// Node kinds that define a function or method: Rust, Python, JavaScript / TypeScript, Go, Java,
/// C / C++, Ruby.
const DEFINITION_KINDS: &[&str] = &[
    "function_item",
    "function_signature_item",
    "function_definition",
    "function_declaration",
    "generator_function_declaration",
    "method_definition",
    "method_declaration",
    "constructor_declaration",
    "method",
];

/// The name a C or C++ function definition declares: the innermost `declarator`.
fn declared_name(node: Node<'_>) -> Option<Node<'_>> {
    let mut declarator = node.child_by_field_name("declarator")?;
    for _ in 0..8 {
        match declarator.child_by_field_name("declarator") {
            Some(inner) => declarator = inner,
            None => return Some(declarator),
        }
    }
    None
}

/// The node naming what a call node calls, and the receiver when the grammar gives it apart,
/// for the call forms of the supported grammars.
fn callee(node: Node<'_>) -> Option<(Node<'_>, Option<Node<'_>>)> {
    match node.kind() {
        // Rust, JavaScript, TypeScript, Go, C, C++.
        "call_expression" => Some((node.child_by_field_name("function")?, None)),
        // Python (`function`); Ruby (`method` on `receiver`).
        "call" => match node.child_by_field_name("function") {
            Some(function) => Some((function, None)),
            None => Some((
                node.child_by_field_name("method")?,
                node.child_by_field_name("receiver"),
            )),
        },
        // Java (`name` on `object`).
        "method_invocation" => Some((
            node.child_by_field_name("name")?,
            node.child_by_field_name("object"),
        )),
        _ => None,
    }
}

/// The last name segment of a callee expression and what it is reached through: `a.b.c` → `c`
/// (through `a.b`), `A::b` → `b` (through `A`), `f::<T>` → `f`.
fn name_of<'s, 't>(mut node: Node<'t>, source: &'s str) -> Option<(&'s str, Option<Node<'t>>)> {
    let mut receiver = None;
    for _ in 0..8 {
        let (next, through) = match node.kind() {
            "identifier" | "field_identifier" | "property_identifier" | "constant" => {
                return Some((node.utf8_text(source.as_bytes()).ok()?, receiver));
            }
            // Rust `a.b`, C `a->b`.
            "field_expression" => (
                node.child_by_field_name("field"),
                node.child_by_field_name("value")
                    .or_else(|| node.child_by_field_name("argument")),
            ),
            // Go `a.b`.
            "selector_expression" => (
                node.child_by_field_name("field"),
                node.child_by_field_name("operand"),
            ),
            // Rust `A::b`, C++ `a::b`.
            "scoped_identifier" | "qualified_identifier" => (
                node.child_by_field_name("name"),
                node.child_by_field_name("path")
                    .or_else(|| node.child_by_field_name("scope")),
            ),
            // JavaScript / TypeScript `a.b`.
            "member_expression" => (
                node.child_by_field_name("property"),
                node.child_by_field_name("object"),
            ),
            // Python `a.b`.
            "attribute" => (
                node.child_by_field_name("attribute"),
                node.child_by_field_name("object"),
            ),
            // Rust `f::<T>`, C++ `f<T>`.
            "generic_function" | "template_function" => (
                node.child_by_field_name("function")
                    .or_else(|| node.child_by_field_name("name")),
                None,
            ),
            _ => (None, None),
        };
        receiver = through.or(receiver);
        node = next?;
    }
    None
}

/// A receiver's text, its end when it is long.
fn receiver_text(node: Node<'_>, source: &str) -> Option<String> {
    let text = node.utf8_text(source.as_bytes()).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let mut start = text.len().saturating_sub(MAX_RECEIVER_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    Some(text[start..].to_owned())
}

/// Whether `text` names a function rather than a type (`Some(..)`, `Vec::new` is `new`, a
/// Python class): identifier characters only, and lowercase or `_` first except in Go, whose
/// exported functions are capitalised.
fn is_function_name(language: Language, text: &str) -> bool {
    let identifier = text.chars().all(|c| c.is_alphanumeric() || c == '_');
    let first = text.chars().next();
    identifier
        && first
            .is_some_and(|first| language == Language::Go || first.is_lowercase() || first == '_')
}

/// `source` without the indentation that all its non-blank lines share.
fn dedent(source: &str) -> String {
    let common = source
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    if common == 0 {
        return source.to_owned();
    }
    source
        .lines()
        .map(|line| line.get(common..).unwrap_or_else(|| line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_calls_are_their_last_segments_in_order() {
        let source = r#"
    fn vector_phase(&mut self, keyword: &KeywordStore) -> Result<()> {
        let server = self.server_store()?;
        let edge = open_store(self.config, &self.paths.vectors)?;
        println!("{}", format!("x"));
        let points: Vec<u64> = Vec::new();
        if phase.embed_pending()? {
            VectorStore::upsert(&edge, points.into_iter().collect::<Vec<_>>());
        }
        Some(Wrapper(3));
        self.embed_pending()?;
        Ok(())
    }
"#;
        assert_eq!(
            called_names(Language::Rust, source),
            [
                "server_store",
                "open_store",
                "new",
                "embed_pending",
                "upsert",
                "collect",
                "into_iter"
            ]
        );
    }

    #[test]
    fn python_and_other_grammars() {
        let python = "
    def flush(self):
        batch = self._take()
        for record in batch:
            self.emit(record)
        logging.shutdown()
        return Result(batch)
";
        assert_eq!(
            called_names(Language::Python, python),
            ["_take", "emit", "shutdown"]
        );
        let go = "func run() { x := parse(a); w.Write(x); fmt.Println(x) }";
        assert_eq!(
            called_names(Language::Go, go),
            ["parse", "Write", "Println"]
        );
        let js = "function go() { const a = load(); a.save(); return new Thing(); }";
        assert_eq!(called_names(Language::JavaScript, js), ["load", "save"]);
        let java = "class A { void f() { g(); this.h(1); } }";
        assert_eq!(called_names(Language::Java, java), ["g", "h"]);
    }

    #[test]
    fn calls_know_what_they_are_called_on() {
        let source = "fn f() { self.vectors.upsert(p); VectorStore::upsert(s, p); run(); }";
        let found = calls(Language::Rust, source);
        assert_eq!(
            found[0],
            Call {
                name: "upsert".into(),
                receiver: Some("self.vectors".into())
            }
        );
        assert_eq!(found[1].name, "run");
        assert_eq!(found[1].receiver, None);
        let python = "def f(self):\n    self.store.add(x)\n";
        assert_eq!(
            calls(Language::Python, python)[0].receiver.as_deref(),
            Some("self.store")
        );
        let java = "class A { void f() { repo.save(x); } }";
        assert_eq!(
            calls(Language::Java, java)[0].receiver.as_deref(),
            Some("repo")
        );
    }

    #[test]
    fn definitions_with_their_lines() {
        let rust = "/// Where vectors are kept.\npub trait VectorStore {\n    /// Adds points.\n    fn upsert(&self);\n}\nimpl X {\n    pub(crate) async fn run(&self) { helper(); }\n}";
        assert_eq!(
            definitions(Language::Rust, rust),
            [("upsert".to_owned(), 3), ("run".to_owned(), 6)]
        );
        let python = "class A:\n    def flush(self):\n        pass\n";
        assert_eq!(
            definitions(Language::Python, python),
            [("flush".to_owned(), 1)]
        );
        let c = "static int parse_line(const char *s) { return 0; }";
        assert_eq!(definitions(Language::C, c), [("parse_line".to_owned(), 0)]);
        let java = "class A { void save() {} }";
        assert_eq!(definitions(Language::Java, java), [("save".to_owned(), 0)]);
        assert!(definitions(Language::Toml, "a = 1").is_empty());
    }

    #[test]
    fn fragments_and_languages_without_a_grammar() {
        // The middle of a function: unbalanced braces, still its calls.
        let fragment = "        let chunks = self.keyword.get_chunks(ids)?;\n        }\n        write_batch(&chunks);\n";
        assert_eq!(
            called_names(Language::Rust, fragment),
            ["get_chunks", "write_batch"]
        );
        assert!(called_names(Language::Toml, "a = f(1)").is_empty());
        assert!(called_names(Language::Rust, "").is_empty());
    }
}
