//! JavaScript, TypeScript and TSX.

use tree_sitter::Node;

use super::ChunkKind;
use super::{
    container, field_text, leaf, named_children, text, unwrapped, Role, Symbol, MAX_UNWRAP,
};

fn is_function_value(node: Node<'_>) -> bool {
    matches!(
        node.kind(),
        "arrow_function" | "function_expression" | "function" | "generator_function"
    )
}

pub(super) fn classify<'t>(node: Node<'t>, src: &str, depth: usize) -> Role<'t> {
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
                return unwrapped(classify(decl, src, depth + 1));
            }
            // `export default function () {}` / `export default class {}`
            match node.child_by_field_name("value") {
                Some(value) if is_function_value(value) || value.kind() == "class" => {
                    let mut role = classify(value, src, depth + 1);
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
                    unwrapped(classify(inner, src, depth + 1))
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
