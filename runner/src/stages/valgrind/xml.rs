//! Memcheck's XML output (protocol 4) read into typed errors: kind, description, stacks,
//! leak sizes, the generated suppression, a fatal signal, and the bare stacks valgrind 3.19
//! writes for file descriptors open at exit.

use anyhow::{bail, Result};
use roxmltree::{Document, Node};

use crate::report::Frame;

/// One error memcheck reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemcheckError {
    /// Valgrind's kind: `InvalidRead`, `UninitCondition`, `Leak_DefinitelyLost`, ...
    pub kind: String,
    /// `Invalid read of size 4`, or a leak's `64 bytes in 1 blocks are definitely lost ...`.
    pub what: String,
    /// Bytes and blocks of a leak record.
    pub leaked: Option<(u64, u64)>,
    /// Where it happened (for a leak: where the block was allocated), innermost first.
    pub stack: Vec<Frame>,
    /// What valgrind adds: the address relation, the origin of an uninitialised value.
    pub aux: Vec<Aux>,
    /// The suppression that would hide this error (`--gen-suppressions=all`).
    pub suppression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aux {
    pub text: String,
    pub stack: Vec<Frame>,
}

/// The signal that killed the program, when one did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FatalSignal {
    pub name: String,
    pub stack: Vec<Frame>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemcheckLog {
    pub errors: Vec<MemcheckError>,
    /// Top-level stacks: valgrind 3.19 prints where each descriptor still open at exit was
    /// opened into the XML, while the descriptor itself goes to the text log, in the same order.
    pub fd_stacks: Vec<Vec<Frame>>,
    pub fatal_signal: Option<FatalSignal>,
    /// Errors hidden by suppressions.
    pub suppressed: u64,
    /// False when the file was cut off (a killed process) and only its complete errors were read.
    pub complete: bool,
}

/// Reads a memcheck XML file. A file cut off mid-write still yields the errors written
/// before the cut, since they are what explains a crash.
pub fn parse(text: &str) -> Result<MemcheckLog> {
    match Document::parse(text) {
        Ok(document) => Ok(read(&document, true)),
        Err(error) => {
            let Some(salvaged) = salvage(text) else {
                bail!("unreadable memcheck XML: {error}");
            };
            match Document::parse(&salvaged) {
                Ok(document) => Ok(read(&document, false)),
                Err(_) => bail!("unreadable memcheck XML: {error}"),
            }
        }
    }
}

/// The text up to the last complete top-level element, closed.
fn salvage(text: &str) -> Option<String> {
    let end = ["</error>", "</status>"]
        .iter()
        .filter_map(|closer| text.rfind(closer).map(|at| at + closer.len()))
        .max()?;
    Some(format!("{}\n</valgrindoutput>\n", &text[..end]))
}

fn read(document: &Document, finished: bool) -> MemcheckLog {
    let mut log = MemcheckLog::default();
    let mut reached_end = false;
    for node in document.root_element().children().filter(Node::is_element) {
        match node.tag_name().name() {
            "error" => log.errors.push(read_error(node)),
            "stack" => log.fd_stacks.push(read_stack(node)),
            "fatal_signal" => {
                log.fatal_signal = Some(FatalSignal {
                    name: child_text(node, "signame").unwrap_or_else(|| "a signal".to_owned()),
                    stack: child(node, "stack").map(read_stack).unwrap_or_default(),
                });
            }
            "suppcounts" => {
                log.suppressed = node
                    .children()
                    .filter(|pair| pair.has_tag_name("pair"))
                    .filter_map(|pair| child_text(pair, "count")?.parse::<u64>().ok())
                    .sum();
            }
            "status" => reached_end |= child_text(node, "state").as_deref() == Some("FINISHED"),
            _ => {}
        }
    }
    log.complete = finished && reached_end;
    log
}

fn read_error(node: Node) -> MemcheckError {
    let xwhat = child(node, "xwhat");
    let what = child_text(node, "what")
        .or_else(|| xwhat.and_then(|x| child_text(x, "text")))
        .unwrap_or_default();
    let leaked = xwhat.and_then(|x| {
        let bytes = child_text(x, "leakedbytes")?.parse().ok()?;
        let blocks = child_text(x, "leakedblocks")?.parse().ok()?;
        Some((bytes, blocks))
    });
    let mut stack = None;
    let mut aux: Vec<Aux> = Vec::new();
    for part in node.children().filter(Node::is_element) {
        match part.tag_name().name() {
            "stack" => {
                let frames = read_stack(part);
                // The first stack is the error's own; each later one belongs to the
                // description just before it ("Block was alloc'd at").
                match (stack.is_none(), aux.last_mut()) {
                    (true, _) => stack = Some(frames),
                    (false, Some(last)) if last.stack.is_empty() => last.stack = frames,
                    _ => {}
                }
            }
            "auxwhat" => aux.push(Aux {
                text: text_of(part),
                stack: Vec::new(),
            }),
            "xauxwhat" => aux.push(Aux {
                text: child_text(part, "text").unwrap_or_default(),
                stack: Vec::new(),
            }),
            _ => {}
        }
    }
    MemcheckError {
        kind: child_text(node, "kind").unwrap_or_default(),
        what,
        leaked,
        stack: stack.unwrap_or_default(),
        aux,
        suppression: child(node, "suppression")
            .and_then(|s| child_text(s, "rawtext"))
            .map(|raw| raw.trim().to_owned()),
    }
}

fn read_stack(node: Node) -> Vec<Frame> {
    node.children()
        .filter(|frame| frame.has_tag_name("frame"))
        .map(|frame| {
            let file = child_text(frame, "file").map(|file| match child_text(frame, "dir") {
                Some(dir) => format!("{dir}/{file}"),
                None => file,
            });
            // Without symbols a frame has only its object and address.
            let function = child_text(frame, "fn")
                .or_else(|| child_text(frame, "obj").map(|obj| format!("??? ({obj})")))
                .or_else(|| child_text(frame, "ip"))
                .unwrap_or_default();
            Frame {
                function,
                file,
                line: child_text(frame, "line").and_then(|line| line.parse().ok()),
                column: None,
            }
        })
        .collect()
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn child_text(node: Node, name: &str) -> Option<String> {
    child(node, name).map(text_of)
}

/// An element's text, CDATA included.
fn text_of(node: Node) -> String {
    node.children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect::<String>()
        .trim()
        .to_owned()
}
