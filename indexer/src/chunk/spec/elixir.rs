//! Elixir: definitions are macro calls (`defmodule`, `def`, ...).

use tree_sitter::Node;

use super::ChunkKind;
use super::{collapse, named_children, text, Role, Symbol, MAX_UNWRAP};

pub(super) fn classify<'t>(node: Node<'t>, src: &str) -> Role<'t> {
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
