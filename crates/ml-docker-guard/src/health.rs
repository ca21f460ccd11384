//! `ml-docker-guard --check URL`: the health check of a `FROM scratch` image, which has no
//! shell and no curl. Healthy means the guard answers `GET /_ping` with 200, which it does
//! only when the engine behind it does.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::http::{self, BufConn, HttpError};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0:?} is not an http://HOST:PORT URL")]
    Url(String),
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("no answer from {url}")]
    Answer {
        url: String,
        #[source]
        source: HttpError,
    },
    #[error("{url}/_ping answered {status}")]
    Status { url: String, status: u16 },
}

/// Asks `url` (`http://HOST:PORT`) for `/_ping`, waiting at most `timeout` for each step.
pub fn check(url: &str, timeout: Duration) -> Result<(), CheckError> {
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| CheckError::Url(url.to_string()))?;
    let connect = |source| CheckError::Connect {
        url: url.to_string(),
        source,
    };
    let addrs: Vec<_> = authority.to_socket_addrs().map_err(connect)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(err) => last = err,
        }
    }
    let mut stream = stream.ok_or_else(|| connect(last))?;
    let answer = |source| CheckError::Answer {
        url: url.to_string(),
        source,
    };
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| {
            stream.write_all(
                format!("GET /_ping HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        })
        .map_err(|e| answer(HttpError::Io(e)))?;
    let mut conn = BufConn::new(stream);
    let head = conn
        .read_head()
        .and_then(|h| h.ok_or_else(|| HttpError::Malformed("closed without an answer".into())))
        .and_then(|h| http::parse_response(&h))
        .map_err(answer)?;
    if head.status == 200 {
        Ok(())
    } else {
        Err(CheckError::Status {
            url: url.trim_end_matches('/').to_string(),
            status: head.status,
        })
    }
}
