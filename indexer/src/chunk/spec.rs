//! Per-language knowledge: which tree-sitter nodes are symbols, which are
//! documentation trivia, which are transparent groups, and how symbols are
//! named. The generic walk lives in `treesitter.rs`.

use tree_sitter::Node;

use super::ChunkKind;
use crate::lang::Language;

/// How many wrapper / declarator levels name extraction follows before giving
/// up (keeps pathological nesting cheap).
const MAX_UNWRAP: usize = 16;

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
        Language::JavaScript | Language::TypeScript | Language::Tsx => js(node, src, 0),
        Language::Go => go(node, src),
        Language::Java => java(node, src),
        Language::C | Language::Cpp => c_family(node, src, 0),
        Language::Ruby => ruby(node, src),
        Language::Elixir => elixir(node, src),
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

fn field_text(node: Node<'_>, field: &str, src: &str) -> Option<String> {
    let child = node.child_by_field_name(field)?;
    let name = collapse(text(child, src));
    (!name.is_empty()).then_some(name)
}

/// Collapses whitespace runs to single spaces.
pub(crate) fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

fn leaf<'t>(kind: ChunkKind, node: Node<'t>, src: &str) -> Role<'t> {
    Role::Symbol(Symbol::new(kind, node, field_text(node, "name", src)))
}

fn container<'t>(kind: ChunkKind, node: Node<'t>, src: &str) -> Role<'t> {
    Role::Symbol(
        Symbol::new(kind, node, field_text(node, "name", src))
            .with_body(node.child_by_field_name("body")),
    )
}

/// Re-targets a symbol found inside a wrapper node; other roles become
/// `Other` (the wrapper as a whole is then ordinary code).
fn unwrapped(role: Role<'_>) -> Role<'_> {
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

fn is_function_value(node: Node<'_>) -> bool {
    matches!(
        node.kind(),
        "arrow_function" | "function_expression" | "function" | "generator_function"
    )
}

fn js<'t>(node: Node<'t>, src: &str, depth: usize) -> Role<'t> {
    match node.kind() {
        "function_declaration" | "generator_function_declaration" | "function_signature" => {
            leaf(ChunkKind::Function, node, src)
        }
        "class_declaration" | "abstract_class_declaration" | "class" => {
            container(ChunkKind::Class, node, src)
        }
        "method_definition" | "method_signature" | "abstract_method_signature" => {
            leaf(ChunkKind::Method, node, src)
        }
        "interface_declaration" => leaf(ChunkKind::Interface, node, src),
        "type_alias_declaration" => leaf(ChunkKind::Type, node, src),
        "enum_declaration" => leaf(ChunkKind::Enum, node, src),
        "internal_module" | "module" => container(ChunkKind::Module, node, src),
        "field_definition" | "public_field_definition" => {
            // `handleClick = () => { ... }` class fields.
            let value = node.child_by_field_name("value");
            if value.is_some_and(is_function_value) {
                let name =
                    field_text(node, "name", src).or_else(|| field_text(node, "property", src));
                Role::Symbol(Symbol::new(ChunkKind::Method, node, name))
            } else {
                Role::Other
            }
        }
        "lexical_declaration" | "variable_declaration" => js_variable(node, src),
        "export_statement" if depth < MAX_UNWRAP => {
            if let Some(decl) = node.child_by_field_name("declaration") {
                return unwrapped(js(decl, src, depth + 1));
            }
            // `export default function () {}` / `export default class {}`
            match node.child_by_field_name("value") {
                Some(value) if is_function_value(value) || value.kind() == "class" => {
                    let mut role = js(value, src, depth + 1);
                    if let Role::Symbol(symbol) = &mut role {
                        symbol.kind = if value.kind() == "class" {
                            ChunkKind::Class
                        } else {
                            ChunkKind::Function
                        };
                        if symbol.name.is_none() {
                            symbol.name = Some("default".to_owned());
                        }
                    }
                    unwrapped(role)
                }
                _ => Role::Other,
            }
        }
        "arrow_function" | "function_expression" | "function" | "generator_function" => {
            leaf(ChunkKind::Function, node, src)
        }
        "ambient_declaration" | "expression_statement" if depth < MAX_UNWRAP => {
            // `declare module "x" { ... }`, `namespace Foo { ... }`
            match node.named_child(0) {
                Some(inner) if node.named_child_count() == 1 => {
                    unwrapped(js(inner, src, depth + 1))
                }
                _ => Role::Other,
            }
        }
        "comment" | "decorator" => Role::Trivia,
        _ => Role::Other,
    }
}

/// `const f = () => ...` is a function; `const LIMIT = 10` a constant.
fn js_variable<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    let declarators: Vec<Node<'t>> = named_children(node)
        .into_iter()
        .filter(|child| child.kind() == "variable_declarator")
        .collect();
    for declarator in &declarators {
        let Some(value) = declarator.child_by_field_name("value") else {
            continue;
        };
        let name = field_text(*declarator, "name", src);
        if is_function_value(value) {
            return Role::Symbol(Symbol::new(ChunkKind::Function, node, name));
        }
        if value.kind() == "class" {
            return Role::Symbol(Symbol::new(ChunkKind::Class, node, name));
        }
    }
    let is_const = node.kind() == "lexical_declaration"
        && node
            .child_by_field_name("kind")
            .is_some_and(|kind| text(kind, src) == "const");
    if !is_const || declarators.len() != 1 {
        return Role::Other;
    }
    let declarator = declarators[0];
    let simple_name = declarator
        .child_by_field_name("name")
        .is_some_and(|name| name.kind() == "identifier");
    let value = declarator.child_by_field_name("value");
    // `const x = require("y")` and `await import()` are imports, not constants.
    let is_import = value.is_some_and(|v| {
        let t = text(v, src);
        t.starts_with("require(") || t.starts_with("await import(") || t.starts_with("import(")
    });
    if simple_name && value.is_some() && !is_import {
        Role::Symbol(Symbol::new(
            ChunkKind::Constant,
            node,
            field_text(declarator, "name", src),
        ))
    } else {
        Role::Other
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

fn c_family<'t>(node: Node<'t>, src: &str, depth: usize) -> Role<'t> {
    match node.kind() {
        "function_definition" => c_function(node, src),
        "struct_specifier" | "union_specifier" | "class_specifier" | "enum_specifier" => {
            let Some(body) = node.child_by_field_name("body") else {
                return Role::Other;
            };
            let kind = match node.kind() {
                "class_specifier" => ChunkKind::Class,
                "enum_specifier" => ChunkKind::Enum,
                _ => ChunkKind::Struct,
            };
            Role::Symbol(
                Symbol::new(kind, node, field_text(node, "name", src)).with_body(Some(body)),
            )
        }
        "declaration" if depth < MAX_UNWRAP => {
            // `struct point { ... } origin;`
            if let Some(Role::Symbol(mut symbol)) = node
                .child_by_field_name("type")
                .map(|ty| c_family(ty, src, depth + 1))
            {
                symbol.body = None;
                return Role::Symbol(symbol);
            }
            // `int open_handle(const char *path);`: a prototype (header API).
            match node.child_by_field_name("declarator") {
                Some(declarator) if is_function_declarator(declarator) => {
                    let name = c_declarator_name(declarator, src).map(|(_, name)| name);
                    Role::Symbol(Symbol::new(ChunkKind::Function, node, name))
                }
                _ => Role::Other,
            }
        }
        "type_definition" => {
            let name = node
                .children_by_field_name("declarator", &mut node.walk())
                .last()
                .and_then(|d| c_declarator_name(d, src))
                .map(|(_, name)| name);
            let kind = match node.child_by_field_name("type") {
                Some(ty) if ty.child_by_field_name("body").is_some() => match ty.kind() {
                    "enum_specifier" => ChunkKind::Enum,
                    "class_specifier" => ChunkKind::Class,
                    _ => ChunkKind::Struct,
                },
                _ => ChunkKind::Type,
            };
            Role::Symbol(Symbol::new(kind, node, name))
        }
        "alias_declaration" => leaf(ChunkKind::Type, node, src),
        "preproc_def" | "preproc_function_def" => leaf(ChunkKind::Macro, node, src),
        "namespace_definition" => container(ChunkKind::Module, node, src),
        "template_declaration" if depth < MAX_UNWRAP => {
            // The templated declaration is the last named child.
            let inner = named_children(node)
                .into_iter()
                .rev()
                .find(|c| c.kind() != "template_parameter_list" && c.kind() != "requires_clause");
            match inner {
                Some(inner) => unwrapped(c_family(inner, src, depth + 1)),
                None => Role::Other,
            }
        }
        "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif" | "preproc_elifdef" => {
            let condition = node.child_by_field_name("condition").map(|c| c.id());
            let name = node.child_by_field_name("name").map(|c| c.id());
            Role::Group(
                named_children(node)
                    .into_iter()
                    .filter(|c| Some(c.id()) != condition && Some(c.id()) != name)
                    .collect(),
            )
        }
        "linkage_specification" => match node.child_by_field_name("body") {
            Some(body) if body.kind() == "declaration_list" => Role::Group(named_children(body)),
            Some(body) => Role::Group(vec![body]),
            None => Role::Other,
        },
        "comment" => Role::Trivia,
        _ => Role::Other,
    }
}

fn c_function<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    let declared = node
        .child_by_field_name("declarator")
        .and_then(|d| c_declarator_name(d, src));
    let (scope, name) = match declared {
        Some((scope, name)) => (scope, Some(name)),
        None => (None, None),
    };
    let kind = if scope.is_some() {
        ChunkKind::Method
    } else {
        ChunkKind::Function
    };
    let mut symbol = Symbol::new(kind, node, name);
    symbol.parent = scope;
    Role::Symbol(symbol)
}

/// Whether a declarator chain declares a function (`f(...)`, `*f(...)`).
fn is_function_declarator(mut node: Node<'_>) -> bool {
    for _ in 0..MAX_UNWRAP {
        match node.kind() {
            "function_declarator" => return true,
            "pointer_declarator" | "reference_declarator" | "attributed_declarator" => {
                match node
                    .child_by_field_name("declarator")
                    .or_else(|| node.named_child(0))
                {
                    Some(inner) => node = inner,
                    None => return false,
                }
            }
            _ => return false,
        }
    }
    false
}

/// Follows a C/C++ declarator chain (`*`, `&`, `(...)`, function
/// declarators) to the declared name. `Foo::bar` gives `(Some("Foo"), "bar")`.
fn c_declarator_name(mut node: Node<'_>, src: &str) -> Option<(Option<String>, String)> {
    for _ in 0..MAX_UNWRAP {
        match node.kind() {
            "function_declarator"
            | "pointer_declarator"
            | "reference_declarator"
            | "parenthesized_declarator"
            | "attributed_declarator"
            | "array_declarator"
            | "init_declarator" => {
                node = node
                    .child_by_field_name("declarator")
                    .or_else(|| node.named_child(0))?;
            }
            "qualified_identifier" => {
                let full = collapse(text(node, src));
                return Some(match full.rsplit_once("::") {
                    Some((scope, name)) if !scope.is_empty() => {
                        (Some(scope.to_owned()), name.to_owned())
                    }
                    _ => (None, full.trim_start_matches("::").to_owned()),
                });
            }
            _ => {
                let name = collapse(text(node, src));
                return (!name.is_empty()).then_some((None, name));
            }
        }
    }
    None
}

fn ruby<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "method" => leaf(ChunkKind::Function, node, src),
        "singleton_method" => leaf(ChunkKind::Method, node, src),
        "class" => container(ChunkKind::Class, node, src),
        "module" => container(ChunkKind::Module, node, src),
        // `class << self ... end`: its methods belong to the enclosing class.
        "singleton_class" => match node.child_by_field_name("body") {
            Some(body) => Role::Group(named_children(body)),
            None => Role::Other,
        },
        "assignment" => match node.child_by_field_name("left") {
            Some(left) if left.kind() == "constant" => Role::Symbol(Symbol::new(
                ChunkKind::Constant,
                node,
                Some(collapse(text(left, src))),
            )),
            _ => Role::Other,
        },
        "comment" => Role::Trivia,
        _ => Role::Other,
    }
}

fn elixir<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    match node.kind() {
        "call" => elixir_call(node, src),
        "unary_operator" => elixir_attribute(node, src),
        "comment" => Role::Trivia,
        _ => Role::Other,
    }
}

fn elixir_call<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    let Some(target) = node.child_by_field_name("target") else {
        return Role::Other;
    };
    if target.kind() != "identifier" {
        return Role::Other;
    }
    let arguments = named_children(node)
        .into_iter()
        .find(|c| c.kind() == "arguments");
    let first_arg = arguments.and_then(|a| a.named_child(0));
    let do_block = named_children(node)
        .into_iter()
        .find(|c| c.kind() == "do_block");
    let (kind, is_container) = match text(target, src) {
        "defmodule" => (ChunkKind::Module, true),
        "defprotocol" => (ChunkKind::Interface, true),
        "defimpl" => (ChunkKind::Impl, true),
        "def" | "defp" | "defdelegate" | "defguard" | "defguardp" | "defn" | "defnp" => {
            (ChunkKind::Function, false)
        }
        "defmacro" | "defmacrop" => (ChunkKind::Macro, false),
        _ => return Role::Other,
    };
    let name = if is_container {
        first_arg.map(|arg| collapse(text(arg, src)))
    } else {
        first_arg.and_then(|arg| elixir_function_name(arg, src))
    };
    let body = if is_container { do_block } else { None };
    Role::Symbol(Symbol::new(kind, node, name).with_body(body))
}

/// `name`, `name(args)` or `name(args) when guard`.
fn elixir_function_name(mut node: Node<'_>, src: &str) -> Option<String> {
    for _ in 0..MAX_UNWRAP {
        match node.kind() {
            "identifier" => return Some(text(node, src).to_owned()),
            "call" => node = node.child_by_field_name("target")?,
            "binary_operator" => node = node.child_by_field_name("left")?,
            _ => return None,
        }
    }
    None
}

/// Module attributes: `@doc` / `@spec` / ... document the next definition,
/// `@type t :: ...` is a type, `@callback` a function signature.
fn elixir_attribute<'t>(node: Node<'t>, src: &str) -> Role<'t> {
    let Some(operand) = node
        .child_by_field_name("operand")
        .filter(|o| o.kind() == "call")
    else {
        return Role::Other;
    };
    let Some(target) = operand.child_by_field_name("target") else {
        return Role::Other;
    };
    if !text(node, src).starts_with('@') {
        return Role::Other;
    }
    let first_arg = named_children(operand)
        .into_iter()
        .find(|c| c.kind() == "arguments")
        .and_then(|a| a.named_child(0));
    match text(target, src) {
        "doc" | "spec" | "impl" | "deprecated" | "since" | "typedoc" | "decorate" | "dialyzer" => {
            Role::Trivia
        }
        "type" | "typep" | "opaque" => Role::Symbol(Symbol::new(
            ChunkKind::Type,
            node,
            first_arg.and_then(|arg| elixir_function_name(arg, src)),
        )),
        "callback" | "macrocallback" => Role::Symbol(Symbol::new(
            ChunkKind::Function,
            node,
            first_arg.and_then(|arg| elixir_function_name(arg, src)),
        )),
        _ => Role::Other,
    }
}
