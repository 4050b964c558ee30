//! PDF documents: their extracted text (see [`crate::pdf`]) cut page by page.
//!
//! Pages are separated by a line holding only a form feed. Each page is one chunk when it fits
//! [`ChunkOptions::max_tokens`], else consecutive pieces cut preferably at blank lines; every
//! piece is a [`ChunkKind::Page`] named after its page (`page 3`) and never spans two pages.

use super::lines::Lines;
use super::window::text_rank;
use super::{split_lines, ChunkKind, ChunkOptions, Piece};
use crate::pdf::page_symbol;

/// The pieces of every page, in order.
pub(crate) fn chunk(lines: &Lines<'_>, opts: &ChunkOptions) -> Vec<Piece> {
    let rank = text_rank(lines);
    let mut pieces = Vec::new();
    let mut page = 1usize;
    let mut page_start = 0usize;
    for line in 0..=lines.len() {
        let at_end = line == lines.len();
        if !at_end && lines.text(line) != "\u{c}" {
            continue;
        }
        if line > page_start {
            let last = line - 1;
            for (start, end) in split_lines(lines, page_start, last, opts.max_tokens, &rank) {
                // One scope per page: tiny pieces merge only within their page.
                pieces.push(
                    Piece::new(ChunkKind::Page, Some(page_symbol(page)), None, start, end)
                        .in_scope(page),
                );
            }
        }
        page += 1;
        page_start = line + 1;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use crate::chunk::{chunk_source, ChunkKind, ChunkOptions};
    use crate::lang::Language;
    use crate::pdf::join_pages;

    fn pages_of(text: &str, opts: &ChunkOptions) -> Vec<(String, String)> {
        chunk_source(Language::Pdf, text, opts)
            .into_iter()
            .map(|chunk| {
                assert_eq!(chunk.kind, ChunkKind::Page);
                assert!(!chunk.text.contains('\u{c}'), "{:?}", chunk.text);
                (chunk.symbol.unwrap_or_default(), chunk.text)
            })
            .collect()
    }

    #[test]
    fn one_chunk_per_small_page_named_by_its_number() {
        let pages = [
            "Installing\nrun the installer".to_string(),
            String::new(),
            "Calibrating\nturn the knob".to_string(),
        ];
        let text = join_pages(&pages);
        let chunks = pages_of(&text, &ChunkOptions::default());
        assert_eq!(
            chunks,
            vec![
                ("page 1".to_string(), pages[0].clone()),
                ("page 3".to_string(), pages[2].clone()),
            ]
        );
        let lines: Vec<(u32, u32)> = chunk_source(Language::Pdf, &text, &ChunkOptions::default())
            .iter()
            .map(|chunk| (chunk.start_line, chunk.end_line))
            .collect();
        assert_eq!(lines, vec![(1, 2), (6, 7)]);
    }

    #[test]
    fn long_pages_split_within_the_page() {
        let paragraph = "calibrate the widget gauge carefully with the spanner\n\n";
        let pages = [paragraph.repeat(40), "short second page".to_string()];
        let opts = ChunkOptions {
            max_tokens: 64,
            min_tokens: 8,
            ..ChunkOptions::default()
        };
        let chunks = pages_of(&join_pages(&pages), &opts);
        let first_page = chunks.iter().filter(|(page, _)| page == "page 1").count();
        assert!(first_page > 1, "{chunks:?}");
        assert_eq!(chunks.last().map(|(page, _)| page.as_str()), Some("page 2"));
        assert_eq!(
            chunks.last().map(|(_, text)| text.as_str()),
            Some("short second page")
        );
    }
}
