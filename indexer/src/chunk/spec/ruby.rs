//! Ruby.

use tree_sitter::Node;

use super::ChunkKind;
use super::{collapse, container, leaf, named_children, text, Role, Symbol};

pub(super) fn classify<'t>(node: Node<'t>, src: &str) -> Role<'t> {
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
