//! The knowledge graph of a report, rule-based: files, symbols and their containment from code
//! evidence, documentation pages, concepts from the question's key phrases, and mentions across
//! passages. Every edge carries the citations of the passages that support it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evidence::Passage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    File,
    Symbol,
    Page,
    Concept,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub label: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// A file or an enclosing item contains a symbol.
    Contains,
    /// A passage of one node names another node's symbol.
    Mentions,
    /// A page or a symbol discusses a concept.
    Discusses,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub relation: Relation,
    /// Citation numbers of the passages supporting the edge.
    pub citations: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// Most edges kept (the best supported).
const MAX_EDGES: usize = 60;

#[derive(Default)]
struct Builder {
    nodes: BTreeMap<String, Node>,
    edges: BTreeMap<(String, String, Relation), Vec<usize>>,
}

impl Builder {
    fn node(&mut self, id: String, label: &str, kind: NodeKind) -> String {
        self.nodes.entry(id.clone()).or_insert_with(|| Node {
            id: id.clone(),
            label: label.to_string(),
            kind,
        });
        id
    }

    fn edge(&mut self, from: &str, to: &str, relation: Relation, citation: usize) {
        if from == to {
            return;
        }
        let citations = self
            .edges
            .entry((from.to_string(), to.to_string(), relation))
            .or_default();
        if !citations.contains(&citation) {
            citations.push(citation);
        }
    }
}

/// Whether `text` contains `name` as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The last segment of a symbol (`Parser::new` → `new`, `impl Parser` → `Parser`).
fn short_name(symbol: &str) -> &str {
    let symbol = symbol.rsplit(' ').next().unwrap_or(symbol);
    symbol.rsplit("::").next().unwrap_or(symbol)
}

/// The graph of `passages`, with concepts from `key_phrases`.
pub fn build_graph(passages: &[Passage], key_phrases: &[String]) -> Graph {
    let mut builder = Builder::default();
    // The node each passage belongs to (its symbol, else its file or page).
    let mut owners: Vec<(String, &Passage)> = Vec::new();
    let mut symbols: Vec<(String, String)> = Vec::new(); // (node id, short name)
    for passage in passages {
        let container = builder.container_of(passage);
        let owner = builder
            .symbol_of(passage, &container, &mut symbols)
            .unwrap_or(container);
        owners.push((owner, passage));
    }
    for (owner, passage) in &owners {
        for (symbol_id, name) in &symbols {
            if name.len() >= 3 && symbol_id != owner && mentions(&passage.text, name) {
                builder.edge(owner, symbol_id, Relation::Mentions, passage.n);
            }
        }
        let lower = passage.text.to_lowercase();
        for phrase in key_phrases.iter().take(8) {
            if phrase.len() >= 3 && mentions(&lower, phrase) {
                let concept = builder.node(format!("concept:{phrase}"), phrase, NodeKind::Concept);
                builder.edge(owner, &concept, Relation::Discusses, passage.n);
            }
        }
    }
    builder.into_graph()
}

impl Builder {
    /// The node of the file or page `passage` comes from.
    fn container_of(&mut self, passage: &Passage) -> String {
        let reference = &passage.reference;
        match (&reference.locator.path, &reference.locator.url) {
            (Some(path), _) => {
                let kind = if reference.locator.source == "code" {
                    NodeKind::File
                } else {
                    NodeKind::Page
                };
                let id = format!(
                    "{}:{path}",
                    reference.locator.collection.as_deref().unwrap_or_default()
                );
                let label = if kind == NodeKind::Page {
                    reference.locator.title.as_str()
                } else {
                    path.as_str()
                };
                self.node(id, label, kind)
            }
            (None, Some(url)) => self.node(url.clone(), &reference.locator.title, NodeKind::Page),
            (None, None) => self.node(
                reference.locator.title.clone(),
                &reference.locator.title,
                NodeKind::Page,
            ),
        }
    }

    /// The node of the code symbol `passage` is (under its parent symbol, in `container`), with
    /// both added to `symbols`; None for other passages.
    fn symbol_of(
        &mut self,
        passage: &Passage,
        container: &str,
        symbols: &mut Vec<(String, String)>,
    ) -> Option<String> {
        let reference = &passage.reference;
        if reference.locator.source != "code" {
            return None;
        }
        let symbol = reference.locator.symbol.as_ref()?;
        let mut parent_id = container.to_string();
        if let Some(parent) = &reference.parent {
            let parent_name = short_name(parent);
            if !parent_name.is_empty() {
                let id = format!("{container}#{parent_name}");
                parent_id = self.node(id, parent_name, NodeKind::Symbol);
                self.edge(container, &parent_id, Relation::Contains, passage.n);
                symbols.push((parent_id.clone(), parent_name.to_string()));
            }
        }
        let id = format!("{container}#{symbol}");
        let label = match &reference.locator.kind {
            Some(kind) => format!("{kind} {symbol}"),
            None => symbol.clone(),
        };
        let owner = self.node(id, &label, NodeKind::Symbol);
        self.edge(&parent_id, &owner, Relation::Contains, passage.n);
        symbols.push((owner.clone(), short_name(symbol).to_string()));
        Some(owner)
    }

    /// The graph: the edges cited most (at most [`MAX_EDGES`]) and the nodes they join.
    fn into_graph(self) -> Graph {
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .map(|((from, to, relation), mut citations)| {
                citations.sort_unstable();
                Edge {
                    from,
                    to,
                    relation,
                    citations,
                }
            })
            .collect();
        edges.sort_by_key(|edge| std::cmp::Reverse(edge.citations.len()));
        edges.truncate(MAX_EDGES);
        let used: std::collections::HashSet<&String> = edges
            .iter()
            .flat_map(|edge| [&edge.from, &edge.to])
            .collect();
        let nodes = self
            .nodes
            .into_values()
            .filter(|node| used.contains(&node.id))
            .collect();
        Graph { nodes, edges }
    }
}

impl Graph {
    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("graph LR\n");
        let index: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(position, node)| (node.id.as_str(), position))
            .collect();
        let escape = |text: &str| {
            text.replace('"', "'")
                .replace(['[', ']', '{', '}', '|', '<', '>'], " ")
        };
        for (position, node) in self.nodes.iter().enumerate() {
            let label = escape(&node.label);
            let shape = match node.kind {
                NodeKind::File => format!("n{position}[\"{label}\"]"),
                NodeKind::Symbol => format!("n{position}(\"{label}\")"),
                NodeKind::Page => format!("n{position}[/\"{label}\"/]"),
                NodeKind::Concept => format!("n{position}((\"{label}\"))"),
            };
            out.push_str(&format!("  {shape}\n"));
        }
        for edge in &self.edges {
            let (Some(from), Some(to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            else {
                continue;
            };
            let relation = match edge.relation {
                Relation::Contains => "contains",
                Relation::Mentions => "mentions",
                Relation::Discusses => "discusses",
            };
            let citations: Vec<String> = edge.citations.iter().map(|n| n.to_string()).collect();
            out.push_str(&format!(
                "  n{from} -->|\"{relation} {}\"| n{to}\n",
                citations
                    .iter()
                    .map(|c| format!("#{c}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::SourceRef;

    fn passage(
        n: usize,
        path: &str,
        symbol: Option<&str>,
        parent: Option<&str>,
        text: &str,
    ) -> Passage {
        Passage {
            n,
            sub_questions: vec![0],
            text: text.into(),
            score: 1.0,
            reference: SourceRef {
                locator: aiex_search::Locator {
                    source: "code".into(),
                    title: path.into(),
                    url: None,
                    collection: Some("repo".into()),
                    path: Some(path.into()),
                    start_line: Some(1),
                    end_line: Some(3),
                    symbol: symbol.map(Into::into),
                    kind: Some("function".into()),
                    language: Some("rust".into()),
                    page: None,
                },
                parent: parent.map(Into::into),
                retrieved_at: String::new(),
            },
        }
    }

    #[test]
    fn containment_mentions_and_concepts_carry_citations() {
        let passages = vec![
            passage(
                1,
                "src/queue.rs",
                Some("push"),
                Some("impl JobQueue"),
                "fn push(&mut self) { /* job queue */ }",
            ),
            passage(
                2,
                "src/run.rs",
                Some("run_jobs"),
                None,
                "fn run_jobs(q: &mut JobQueue) { q.push(); }",
            ),
        ];
        let graph = build_graph(&passages, &["job queue".to_string()]);
        let has = |from: &str, to: &str, relation: Relation, n: usize| {
            graph.edges.iter().any(|e| {
                e.from == from && e.to == to && e.relation == relation && e.citations.contains(&n)
            })
        };
        assert!(has(
            "repo:src/queue.rs",
            "repo:src/queue.rs#JobQueue",
            Relation::Contains,
            1
        ));
        assert!(has(
            "repo:src/queue.rs#JobQueue",
            "repo:src/queue.rs#push",
            Relation::Contains,
            1
        ));
        assert!(has(
            "repo:src/run.rs#run_jobs",
            "repo:src/queue.rs#JobQueue",
            Relation::Mentions,
            2
        ));
        assert!(has(
            "repo:src/queue.rs#push",
            "concept:job queue",
            Relation::Discusses,
            1
        ));
        let mermaid = graph.to_mermaid();
        assert!(mermaid.starts_with("graph LR\n"));
        assert!(mermaid.contains("-->|\"mentions #2\"|"), "{mermaid}");
        assert!(graph.edges.iter().all(|e| !e.citations.is_empty()));
    }
}
