//! `ml-docker-guard`: the Docker API as the task launchers see it.
//!
//! Whoever can create a container through the Docker API is root on the host: one
//! `POST /containers/create` with `"Privileged": true` or a bind of `/` is enough. The
//! launchers (the scheduler, the Celery workers) need that call, so the guard reads each
//! create body and lets through only a container `airflow_ml_dags/dags/common.py` would ask
//! for ([`policy`]); every other call but the handful DockerOperator makes is refused
//! ([`route`]); and the per-container calls (start, attach, wait, logs, inspect, stop, kill,
//! delete) reach only containers the guard itself let be created, which it labels
//! `ml.docker-guard=allowed` and looks up on the engine before each such call. Inspect of
//! Postgres or MLflow, whose environment holds their passwords, is refused.
//!
//! # Why a Rust service of our own
//!
//! The issue asked for an existing, maintained component if one fits. None does with the
//! registries this project builds from (crates.io, PyPI and Debian's packages, no image
//! registry):
//!
//! - HAProxy (the allow-list this replaces) cannot decide on a request body in its
//!   configuration. Debian's build embeds Lua, so the checks could be Lua actions: a JSON
//!   parser and this whole policy in Lua, working on a body that must fit HAProxy's request
//!   buffer, plus a second request to the engine from inside an action to look a
//!   container's label up, with nothing to test them with but a running HAProxy.
//! - The Docker socket proxies people run (Tecnativa's and LinuxServer's, both HAProxy
//!   path lists like ours; wollomatic's socket-proxy in Go, whose body check covers bind
//!   mount sources only) come as images from registries the build cannot reach, and none
//!   reads `Privileged`, capabilities, the user or namespaces. Debian packages none
//!   (`apt-cache search docker proxy` finds nothing of the kind), PyPI's candidate
//!   (`dockershield`) was last released in 2020, and crates.io has none as a program.
//! - An engine authorization plugin (OPA's docker-authz) is a daemon configured on each
//!   host, outside the stack, and is not packaged for us either.
//!
//! So the guard is a small Rust service like the stages: std networking only (one thread
//! per client connection, no async runtime, no HTTP framework) so that every byte it
//! forwards is decided in this crate, `serde_json` for the body, a static binary on a
//! `FROM scratch` image, and tests that attack it (unit tests of the policy on the create
//! bodies docker-py really sends for our tasks, an integration test of the real binary
//! against a fake engine).
//!
//! # What it speaks
//!
//! HTTP/1.1 with keep-alive from the clients (request heads and bodies read whole, by
//! Content-Length or chunked); to the engine's unix socket one kept connection per client
//! connection; responses streamed back as they arrive (Content-Length, chunked or until
//! close, never buffered, so `logs?follow=1` and `wait` flow); `POST
//! /containers/{id}/attach` with `Connection: Upgrade` piped both ways after the engine's
//! `101 UPGRADED`. Refusals are `403` with a JSON `message` naming the rule, the field and
//! the value, and one line on stderr.

pub mod health;
pub mod http;
pub mod policy;
pub mod proxy;
pub mod route;

pub use policy::{CreatePolicy, PolicyError, Refusal, GUARD_LABEL, GUARD_LABEL_VALUE};
pub use proxy::{Config, ServeError, Server};
