//! A minimal SMTP client for what swaks cannot do: several messages on one connection.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    pub fn connect(port: u16) -> Smtp {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the MTA");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Smtp { reader: BufReader::new(s.try_clone().unwrap()), writer: s };
        let greeting = c.reply();
        assert!(greeting.starts_with("220"), "{greeting}");
        c
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> String {
        write!(self.writer, "{line}\r\n").unwrap();
        self.reply()
    }

    /// MAIL, RCPT, DATA and the message; returns the reply to the final dot.
    pub fn message(&mut self, from: &str, to: &str, data: &str) -> String {
        assert!(self.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        assert!(self.cmd(&format!("RCPT TO:<{to}>")).starts_with("250"));
        assert!(self.cmd("DATA").starts_with("354"));
        for line in data.lines() {
            let line = if line.starts_with('.') { format!(".{line}") } else { line.to_string() };
            write!(self.writer, "{line}\r\n").unwrap();
        }
        self.cmd(".")
    }
}
