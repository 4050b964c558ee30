//! C and C++.

use tree_sitter::Node;

use super::ChunkKind;
use super::{
    collapse, container, field_text, leaf, named_children, text, unwrapped, Role, Symbol,
    MAX_UNWRAP,
};

pub(super) fn classify<'t>(node: Node<'t>, src: &str, depth: usize) -> Role<'t> {
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
                .map(|ty| classify(ty, src, depth + 1))
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
                Some(inner) => unwrapped(classify(inner, src, depth + 1)),
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
