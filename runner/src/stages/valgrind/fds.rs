//! File descriptors left open at exit, from memcheck's text log (`--track-fds=yes`; valgrind
//! 3.19 writes them as text only), paired with the opening stacks found in the XML.

use crate::report::Frame;

/// One descriptor valgrind listed as open at exit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenFd {
    pub fd: i32,
    /// The path, or the socket's description; empty when valgrind knows neither.
    pub description: String,
    /// Open before the program started (runner's pipes, valgrind's own log files).
    pub inherited: bool,
}

/// Reads the `Open file descriptor N: path` records of a memcheck text log.
pub fn parse(log: &str) -> Vec<OpenFd> {
    let mut fds: Vec<OpenFd> = Vec::new();
    for line in log.lines().map(strip_pid) {
        if let Some(record) = line.strip_prefix("Open ") {
            // `file descriptor 5: /path`, `AF_UNIX socket 6: /tmp/s`, `pf-16 socket 7:`
            let Some((head, description)) = record.split_once(':') else {
                continue;
            };
            let Some(fd) = head
                .rsplit(' ')
                .next()
                .and_then(|number| number.parse().ok())
            else {
                continue;
            };
            fds.push(OpenFd {
                fd,
                description: description.trim().to_owned(),
                inherited: false,
            });
        } else if line.trim() == "<inherited from parent>" {
            if let Some(last) = fds.last_mut() {
                last.inherited = true;
            }
        }
    }
    fds
}

/// `==1234== text` → `text`.
fn strip_pid(line: &str) -> &str {
    line.strip_prefix("==")
        .and_then(|rest| rest.split_once("== "))
        .filter(|(pid, _)| pid.chars().all(|c| c.is_ascii_digit()))
        .map_or(line, |(_, text)| text)
}

/// The descriptors the program itself opened and left open, each with the stack that opened
/// it. Every descriptor that is not inherited has one stack in the XML, in the log's order;
/// stdin, stdout and stderr are never counted.
pub fn leaked(open: Vec<OpenFd>, mut stacks: Vec<Vec<Frame>>) -> Vec<(OpenFd, Vec<Frame>)> {
    let opened: Vec<OpenFd> = open.into_iter().filter(|fd| !fd.inherited).collect();
    if stacks.len() != opened.len() {
        // Pairing by order is only sound when the counts agree; a descriptor without its
        // stack is still a leak.
        stacks = vec![Vec::new(); opened.len()];
    }
    opened
        .into_iter()
        .zip(stacks)
        .filter(|(fd, _)| fd.fd > 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_who_opened_them() {
        let log = "==7== FILE DESCRIPTORS: 6 open (3 std) at exit.\n\
                   ==7== Open file descriptor 5: /w/Cargo.toml\n==7== \n\
                   ==7== Open AF_UNIX socket 6: <unknown>\n==7== \n\
                   ==7== Open file descriptor 3: /out/run.log\n\
                   ==7==    <inherited from parent>\n==7== \n";
        let fds = parse(log);
        assert_eq!(fds.len(), 3);
        assert_eq!(
            fds[0],
            OpenFd {
                fd: 5,
                description: "/w/Cargo.toml".into(),
                inherited: false
            }
        );
        assert_eq!((fds[1].fd, fds[1].description.as_str()), (6, "<unknown>"));
        assert!(fds[2].inherited);
    }

    #[test]
    fn pairs_stacks_in_order_and_leaves_out_inherited_and_std_descriptors() {
        let fd = |fd, inherited| OpenFd {
            fd,
            description: String::new(),
            inherited,
        };
        let frame = |name: &str| {
            vec![Frame {
                function: name.into(),
                file: None,
                line: None,
                column: None,
            }]
        };
        let open = vec![fd(1, false), fd(9, true), fd(5, false)];
        let leaked_fds = leaked(open.clone(), vec![frame("reopen_stdout"), frame("open")]);
        assert_eq!(leaked_fds.len(), 1);
        assert_eq!(leaked_fds[0].0.fd, 5);
        assert_eq!(leaked_fds[0].1[0].function, "open");
        let unpaired = leaked(open, vec![frame("x")]);
        assert!(unpaired[0].1.is_empty());
    }
}
