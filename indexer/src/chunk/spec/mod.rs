//! Per-language knowledge: which tree-sitter nodes are symbols, which are
//! documentation trivia, which are transparent groups, and how symbols are
//! named. The generic walk lives in `treesitter.rs`.

mod c;
mod elixir;
mod js;
mod ruby;

use tree_sitter::Node;

use super::ChunkKind;
use crate::lang::Language;

/// How many wrapper / declarator levels name extraction follows before giving
/// up (keeps pathological nesting cheap).
pub(super) const MAX_UNWRAP: usize = 16;

/// The role of a node inside a scope (file, class body, module body, ...).
pub(crate) enum Role<'t> {
    /// A chunk-worthy declaration.
    Symbol(Symbol<'t>),
    /// A comment, attribute or decorator that belongs to the next symbol when
    /// directly above it.
    Trivia,
    /// A transparent wrapper (preprocessor conditionals, `extern "C" {}`,
    /// Java enum body declarations, ...): its children are walked as if they
    /// were in the enclosing scope.
    Group(Vec<Node<'t>>),
    /// Anything else (imports, statements, fields): preamble / leftover code.
    Other,
}

pub(crate) struct Symbol<'t> {
    pub(crate) kind: ChunkKind,
    pub(crate) name: Option<String>,
    /// The declaration node itself (inside export / decorator / template
    /// wrappers); used to build the container header.
    pub(crate) decl: Node<'t>,
    /// Body whose children are walked when the symbol is a container that is
    /// too large to be one chunk.
    pub(crate) body: Option<Node<'t>>,
    /// Parent context overriding the enclosing container: a Go receiver type,
    /// the `Foo` of a C++ `Foo::bar` definition.
    pub(crate) parent: Option<String>,
}

impl<'t> Symbol<'t> {
    fn new(kind: ChunkKind, decl: Node<'t>, name: Option<String>) -> Self {
        Symbol {
            kind,
            name,
            decl,
            body: None,
            parent: None,
        }
    }

    fn with_body(mut self, body: Option<Node<'t>>) -> Self {
        self.body = body;
        self
    }
}

/// Classifies `node`, a direct child of a scope.
pub(crate) fn classify<'t>(lang: Language, node: Node<'t>, src: &str) -> Role<'t> {
    match lang {
        Language::Rust => rust(node, src),
        Language::Python => python(node, src),
        Language::JavaScript | Language::TypeScript | Language::Tsx => js::classify(node, src, 0),
        Language::Go => go(node, src),
        Language::Java => java(node, src),
        Language::C | Language::Cpp => c::classify(node, src, 0),
        Language::Ruby => ruby::classify(node, src),
        Language::Elixir => elixir::classify(node, src),
        _ => Role::Other,
    }
}

/// Kind of a function defined directly inside a container of kind
/// `container` (`None` at file level).
pub(crate) fn refine_kind(
    lang: Language,
    kind: ChunkKind,
    container: Option<ChunkKind>,
) -> ChunkKind {
    if kind != ChunkKind::Function {
        return kind;
    }
    match container {
        None => kind,
        Some(ChunkKind::Module) if lang != Language::Ruby => kind,
        Some(_) => ChunkKind::Method,
    }
}

/// Source text of `node` (empty if the range is not on char boundaries).
pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.start_byte()..node.end_byte()).unwrap_or("")
}

pub(super) fn field_text(node: Node<'_>, field: &str, src: &str) -> Option<String> {
    let child = node.child_by_field_name(field)?;
    let name = collapse(text(child, src));
    (!name.is_empty()).then_some(name)
}

/// Collapses whitespace runs to single spaces.
pub(crate) fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

pub(super) fn leaf<'t>(kind: ChunkKind, node: Node<'t>, src: &str) -> Role<'t> {
    Role::Symbol(Symbol::new(kind, node, field_text(node, "name", src)))
}

pub(super) fn container<'t>(kind: ChunkKind, node: Node<'t>, src: &str) -> Role<'t> {
    Role::Symbol(
        Symbol::new(kind, node, field_text(node, "name", src))
            .with_body(node.child_by_field_name("body")),
    )
}

/// Re-targets a symbol found inside a wrapper node; other roles become
/// `Other` (the wrapper as a whole is then ordinary code).
pub(super) fn unwrapped(role: Role<'_>) -> Role<'_> {
    match role {
        Role::Symbol(symbol) => Role::Symbol(symbol),
        _ => Role::Other,
    }
}

fn rust<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "function_item" | "function_signature_item" => leaf(ChunkKind::Function, node, src),
        "struct_item" | "union_item" => leaf(ChunkKind::Struct, node, src),
        "enum_item" => leaf(ChunkKind::Enum, node, src),
        "const_item" | "static_item" => leaf(ChunkKind::Constant, node, src),
        "type_item" => leaf(ChunkKind::Type, node, src),
        "macro_definition" => leaf(ChunkKind::Macro, node, src),
        "trait_item" => container(ChunkKind::Trait, node, src),
        "mod_item" => container(ChunkKind::Module, node, src),
        "foreign_mod_item" => Role::Symbol(
            Symbol::new(ChunkKind::Module, node, None).with_body(node.child_by_field_name("body")),
        ),
        "impl_item" => {
            // `impl<T> Display for Parser<T>` is named `Parser`.
            let name = node.child_by_field_name("type").map(|ty| {
                let base = match ty.kind() {
                    "generic_type" => ty.child_by_field_name("type").unwrap_or(ty),
                    _ => ty,
                };
                collapse(text(base, src))
            });
            Role::Symbol(
                Symbol::new(ChunkKind::Impl, node, name)
                    .with_body(node.child_by_field_name("body")),
            )
        }
        "attribute_item" | "block_comment" => Role::Trivia,
        // `//!` inner doc comments document the enclosing item.
        "line_comment" if node.child_by_field_name("inner").is_none() => Role::Trivia,
        _ => Role::Other,
    }
}

fn python<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "function_definition" => leaf(ChunkKind::Function, node, src),
        "class_definition" => container(ChunkKind::Class, node, src),
        "decorated_definition" => match node.child_by_field_name("definition") {
            Some(def) => unwrapped(python(def, src)),
            None => Role::Other,
        },
        "type_alias_statement" => Role::Symbol(Symbol::new(
            ChunkKind::Type,
            node,
            node.child_by_field_name("left")
                .map(|left| collapse(text(left, src))),
        )),
        "expression_statement" => {
            // `MAX_SIZE = 10`: an upper-case module/class level constant.
            let Some(assign) = node.named_child(0).filter(|n| n.kind() == "assignment") else {
                return Role::Other;
            };
            let Some(left) = assign
                .child_by_field_name("left")
                .filter(|l| l.kind() == "identifier")
            else {
                return Role::Other;
            };
            let name = text(left, src);
            let is_const = name.chars().any(|c| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_const {
                Role::Symbol(Symbol::new(
                    ChunkKind::Constant,
                    node,
                    Some(name.to_owned()),
                ))
            } else {
                Role::Other
            }
        }
        "comment" => Role::Trivia,
        _ => Role::Other,
    }
}

fn go<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "function_declaration" => leaf(ChunkKind::Function, node, src),
        "method_declaration" => {
            let mut symbol = Symbol::new(ChunkKind::Method, node, field_text(node, "name", src));
            symbol.parent = go_receiver(node, src);
            Role::Symbol(symbol)
        }
        "type_declaration" => {
            let Some(spec) = named_children(node)
                .into_iter()
                .find(|c| matches!(c.kind(), "type_spec" | "type_alias"))
            else {
                return Role::Other;
            };
            let kind = match spec.child_by_field_name("type").map(|t| t.kind()) {
                Some("struct_type") => ChunkKind::Struct,
                Some("interface_type") => ChunkKind::Interface,
                _ => ChunkKind::Type,
            };
            Role::Symbol(Symbol::new(kind, node, field_text(spec, "name", src)))
        }
        "const_declaration" => {
            let name = named_children(node)
                .into_iter()
                .find(|c| c.kind() == "const_spec")
                .and_then(|spec| field_text(spec, "name", src));
            Role::Symbol(Symbol::new(ChunkKind::Constant, node, name))
        }
        "comment" => Role::Trivia,
        _ => Role::Other,
    }
}

/// `func (s *Server[T]) Run()` → `Server`.
fn go_receiver(node: Node<'_>, src: &str) -> Option<String> {
    let receiver = node.child_by_field_name("receiver")?;
    let param = named_children(receiver)
        .into_iter()
        .find(|c| c.kind() == "parameter_declaration")?;
    let mut ty = param.child_by_field_name("type")?;
    for _ in 0..MAX_UNWRAP {
        match ty.kind() {
            "pointer_type" | "parenthesized_type" => ty = ty.named_child(0)?,
            "generic_type" => ty = ty.child_by_field_name("type")?,
            _ => break,
        }
    }
    let name = collapse(text(ty, src));
    (!name.is_empty()).then_some(name)
}

fn java<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "class_declaration" | "record_declaration" => container(ChunkKind::Class, node, src),
        "interface_declaration" | "annotation_type_declaration" => {
            container(ChunkKind::Interface, node, src)
        }
        "enum_declaration" => container(ChunkKind::Enum, node, src),
        "method_declaration" | "constructor_declaration" | "compact_constructor_declaration" => {
            leaf(ChunkKind::Method, node, src)
        }
        "enum_body_declarations" => Role::Group(named_children(node)),
        "line_comment" | "block_comment" => Role::Trivia,
        _ => Role::Other,
    }
}
