//! Checks with outside tools, each installed on first use: the element templates with Camunda's
//! validator and the modeling UI in Chromium (npm, apt), the Helm chart with Helm's own code
//! (PyPI), and the test gateway's wire compatibility with Camunda's `zbctl` (npm); and the
//! generated documents and every link in the documents.

#[path = "../support/mod.rs"]
mod support;

mod chart;
mod docs;
mod templates;
mod zbctl;
