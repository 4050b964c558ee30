//! The text of PDF documents, page by page, for documentation sets.
//!
//! [`extract`] turns a PDF's bytes into one text per page with `pdf-extract` (on `lopdf`), and
//! [`join_pages`] makes them the file's indexed text: pages separated by a line holding only a
//! form feed, so that the chunker cuts each page apart ([`page_symbol`] names its chunks) and exact
//! search reads text, never the binary.
//!
//! Extraction libraries can panic or run for a very long time on hostile or broken files. Every
//! call into the crate runs under `catch_unwind`; the whole extraction runs on a thread of its own
//! that the caller waits for at most [`EXTRACT_TIMEOUT`] (a page that never finishes leaves that
//! thread behind, the run goes on); between pages a deadline and a page limit stop the work. A
//! file that cannot be read (corrupt, encrypted with a password, no text layer, too slow) is a
//! [`PdfFailure`] with its reason, never a panic or a stalled run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pdf_extract::{Document, PlainTextOutput};

use crate::walk::SkipReason;

/// PDFs larger than this are skipped as too large (`index.max_file_bytes` is sized for text files;
/// manuals are larger).
pub const MAX_PDF_BYTES: u64 = 32 * 1024 * 1024;
/// Pages read at most per document; the rest are left out.
pub const MAX_PAGES: usize = 2_000;
/// Time one document's extraction may take.
pub const EXTRACT_TIMEOUT: Duration = Duration::from_secs(30);
/// What separates two pages in a document's text: a line holding only a form feed.
pub const PAGE_BREAK: &str = "\n\u{c}\n";

/// Why a PDF's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdfFailure {
    /// Encrypted, and the empty user password does not open it.
    Encrypted,
    /// Not a readable PDF (truncated, corrupt), or the extractor failed or panicked on it.
    Unreadable(String),
    /// Pages without any text: a scanned or image-only document.
    NoText { pages: usize },
    /// Extraction did not finish within [`EXTRACT_TIMEOUT`].
    TimedOut,
}

impl PdfFailure {
    /// The skip reason the run counts the file under.
    pub fn skip_reason(&self) -> SkipReason {
        match self {
            PdfFailure::Encrypted => SkipReason::PdfEncrypted,
            PdfFailure::Unreadable(_) => SkipReason::PdfUnreadable,
            PdfFailure::NoText { .. } => SkipReason::PdfNoText,
            PdfFailure::TimedOut => SkipReason::PdfTimedOut,
        }
    }
}

impl std::fmt::Display for PdfFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PdfFailure::Encrypted => f.write_str("encrypted PDF: it needs a password"),
            PdfFailure::Unreadable(reason) => write!(f, "unreadable PDF: {reason}"),
            PdfFailure::NoText { pages } => write!(
                f,
                "no text in {pages} page(s): a scanned or image-only PDF (no OCR)"
            ),
            PdfFailure::TimedOut => write!(
                f,
                "text extraction took longer than {} s",
                EXTRACT_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The text of each page of the PDF in `bytes` (page 1 first), within [`EXTRACT_TIMEOUT`].
///
/// Runs on a thread of its own: a call into the extractor that never returns is abandoned there,
/// so the caller always gets an answer.
pub fn extract(bytes: Vec<u8>) -> Result<Vec<String>, PdfFailure> {
    extract_within(bytes, EXTRACT_TIMEOUT)
}

fn extract_within(bytes: Vec<u8>, timeout: Duration) -> Result<Vec<String>, PdfFailure> {
    let deadline = Instant::now() + timeout;
    let (sender, receiver) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("aiex-pdf".to_string())
        .spawn(move || {
            // The receiver is gone only when the caller gave up waiting.
            let _ = sender.send(extract_pages(&bytes, deadline));
        });
    if let Err(err) = spawned {
        return Err(PdfFailure::Unreadable(format!(
            "no thread for extraction: {err}"
        )));
    }
    match receiver.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("PDF text extraction timed out; its thread is left to finish");
            Err(PdfFailure::TimedOut)
        }
    }
}

/// Extracts page by page in the calling thread, each call into the extractor under
/// `catch_unwind`, stopping at `deadline` or after [`MAX_PAGES`] pages.
fn extract_pages(bytes: &[u8], deadline: Instant) -> Result<Vec<String>, PdfFailure> {
    let mut document = guarded(|| Document::load_mem(bytes))?.map_err(|err| load_failure(&err))?;
    if document.is_encrypted() {
        // Documents encrypted only against editing open with the empty password.
        if guarded(|| document.decrypt(""))?.is_err() {
            return Err(PdfFailure::Encrypted);
        }
    }
    let page_numbers: Vec<u32> = guarded(|| document.get_pages().into_keys().collect())?;
    if page_numbers.is_empty() {
        return Err(PdfFailure::Unreadable("no pages".to_string()));
    }
    let mut pages = Vec::with_capacity(page_numbers.len().min(MAX_PAGES));
    let mut failed_pages = 0usize;
    for page_number in page_numbers.into_iter().take(MAX_PAGES) {
        if Instant::now() > deadline {
            return Err(PdfFailure::TimedOut);
        }
        match guarded(|| page_text(&document, page_number)) {
            Ok(Ok(text)) => pages.push(text),
            // One bad page keeps its place (empty), so the pages after it keep their numbers.
            Ok(Err(_)) | Err(_) => {
                failed_pages += 1;
                pages.push(String::new());
            }
        }
    }
    if pages.iter().all(|page| page.trim().is_empty()) {
        if failed_pages == pages.len() {
            return Err(PdfFailure::Unreadable(format!(
                "text extraction failed on every page ({failed_pages})"
            )));
        }
        return Err(PdfFailure::NoText { pages: pages.len() });
    }
    if failed_pages > 0 {
        tracing::debug!(failed_pages, "PDF pages without extractable text");
    }
    Ok(pages)
}

/// The text of one page (numbered from 1).
fn page_text(document: &Document, page_number: u32) -> Result<String, pdf_extract::OutputError> {
    let mut text = String::new();
    {
        let mut output = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(document, &mut output, page_number)?;
    }
    Ok(text)
}

/// Runs `work`, turning a panic into a failure.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, PdfFailure> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        PdfFailure::Unreadable(format!("the extractor panicked: {message}"))
    })
}

fn load_failure(err: &pdf_extract::Error) -> PdfFailure {
    match err {
        pdf_extract::Error::Decryption(_) => PdfFailure::Encrypted,
        other => PdfFailure::Unreadable(other.to_string()),
    }
}

/// The indexed text of a document: its pages in order, separated by [`PAGE_BREAK`], each page's
/// text with its line ends normalised and trailing blank lines dropped. Page `n` is the text
/// after the `n - 1`th break, whatever it holds (an empty page is an empty stretch).
pub fn join_pages(pages: &[String]) -> String {
    let cleaned: Vec<String> = pages
        .iter()
        .map(|page| {
            page.replace("\r\n", "\n")
                .replace(['\r', '\u{c}'], "\n")
                .trim_end()
                .to_string()
        })
        .collect();
    cleaned.join(PAGE_BREAK)
}

/// The symbol of the chunks of page `number` (1-based): `page 3`.
pub fn page_symbol(number: usize) -> String {
    format!("page {number}")
}

/// The page a chunk's symbol names (the inverse of [`page_symbol`]).
pub fn page_number(symbol: &str) -> Option<u32> {
    symbol.strip_prefix("page ")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANUAL: &[u8] = include_bytes!("../tests/fixtures/pdf/manual.pdf");
    const CORRUPT: &[u8] = include_bytes!("../tests/fixtures/pdf/corrupt.pdf");
    const ENCRYPTED: &[u8] = include_bytes!("../tests/fixtures/pdf/encrypted.pdf");

    #[test]
    fn extracts_each_page_in_order() {
        let pages = extract(MANUAL.to_vec()).expect("the manual is readable");
        assert_eq!(pages.len(), 3);
        assert!(pages[0].contains("installation"), "{:?}", pages[0]);
        assert!(pages[1].contains("flux capacitor"), "{:?}", pages[1]);
        assert!(pages[1].contains("spanner"), "{:?}", pages[1]);
        assert!(pages[2].contains("reseat the fuse"), "{:?}", pages[2]);
        assert!(!pages[0].contains("spanner") && !pages[2].contains("spanner"));
    }

    #[test]
    fn truncated_file_is_unreadable() {
        let failure = extract(CORRUPT.to_vec()).expect_err("truncated");
        assert!(matches!(failure, PdfFailure::Unreadable(_)), "{failure:?}");
        assert_eq!(failure.skip_reason(), SkipReason::PdfUnreadable);
        assert!(extract(b"not a pdf at all".to_vec()).is_err());
        assert!(extract(Vec::new()).is_err());
    }

    #[test]
    fn password_protected_file_is_encrypted() {
        let failure = extract(ENCRYPTED.to_vec()).expect_err("needs a password");
        assert_eq!(failure, PdfFailure::Encrypted);
        assert_eq!(failure.to_string(), "encrypted PDF: it needs a password");
    }

    #[test]
    fn damaged_bytes_never_panic() {
        // Bytes flipped through the body: whatever the extractor makes of them, an answer comes back.
        for step in [97usize, 211, 1009] {
            let mut damaged = MANUAL.to_vec();
            for index in (400..damaged.len()).step_by(step) {
                damaged[index] ^= 0x5a;
            }
            let _answer = extract(damaged);
        }
    }

    #[test]
    fn extraction_past_its_time_is_a_timeout() {
        assert_eq!(
            extract_within(MANUAL.to_vec(), Duration::ZERO),
            Err(PdfFailure::TimedOut)
        );
    }

    #[test]
    fn pages_join_with_form_feed_lines() {
        let pages = vec![
            "one\r\n\n".to_string(),
            String::new(),
            "three\u{c}".to_string(),
        ];
        let text = join_pages(&pages);
        assert_eq!(text, "one\n\u{c}\n\n\u{c}\nthree");
        assert_eq!(page_number(&page_symbol(3)), Some(3));
        assert_eq!(page_number("parse_config"), None);
    }
}
