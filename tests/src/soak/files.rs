//! The file pipelines the soak runs. Each is its `FilePipelineUnderTest` impl (in
//! `crate::file_pipeline`), which says its files' shape, when one is complete and how its
//! target is checked; [`Soaked`] adapts one to the workload, the drain and the checker,
//! which name no pipeline. A file pipeline joins the soak by its place in [`FILE_PIPELINES`].

use crate::file_pipeline::dynamodb::P2;
use crate::file_pipeline::mysql::P1;
use crate::file_pipeline::orders::P3;
use crate::file_pipeline::{FilePipelineUnderTest, Soak};
use crate::soak::reconcile::Report;
use crate::soak::rig::Rig;
use crate::soak::workload::{archived_versions, Input};
use anyhow::Result;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

/// Every file pipeline the soak runs.
pub static FILE_PIPELINES: [&dyn SoakedPipeline; 3] = [
    &Soaked::<P1>(PhantomData),
    &Soaked::<P2>(PhantomData),
    &Soaked::<P3>(PhantomData),
];

/// A file pipeline as the soak's workload and checker see it: one type for all of them.
pub trait SoakedPipeline: Send + Sync + fmt::Debug {
    fn soak(&self) -> &'static Soak;
    /// The bucket its files land in (a template logical id).
    fn bucket(&self) -> &'static str;
    /// See `FilePipelineUnderTest::soak_place`.
    fn place(&self, n: u32) -> Option<(String, String)>;
    /// A file of rows numbered `rows`; a bad one ends with the pipeline's bad line.
    fn body(&self, rows: Range<u32>, bad: bool) -> String;
    /// See `FilePipelineUnderTest::soak_completed`.
    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>>;
    /// See `FilePipelineUnderTest::soak_reconcile`.
    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A `FilePipelineUnderTest` as a [`SoakedPipeline`].
pub struct Soaked<P>(PhantomData<fn() -> P>);

impl<P: FilePipelineUnderTest> fmt::Debug for Soaked<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(P::SOAK.name)
    }
}

impl<P: FilePipelineUnderTest> SoakedPipeline for Soaked<P> {
    fn soak(&self) -> &'static Soak {
        &P::SOAK
    }

    fn bucket(&self) -> &'static str {
        P::BUCKET
    }

    fn place(&self, n: u32) -> Option<(String, String)> {
        P::soak_place(n)
    }

    fn body(&self, rows: Range<u32>, bad: bool) -> String {
        let text = P::rows(rows);
        if bad {
            text + P::BAD_LINE
        } else {
            text
        }
    }

    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>> {
        Box::pin(P::soak_completed(rig, pending))
    }

    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(P::soak_reconcile(rig, inputs, report))
    }
}

/// "12 (2 bad)"
pub(crate) fn count_files(inputs: &[&Input]) -> String {
    let bad = inputs.iter().filter(|i| i.bad).count();
    format!("{} ({bad} bad)", inputs.len())
}

/// The pending inputs archived once per upload.
pub(crate) async fn archived_per_upload(rig: &Rig, pending: &[&Input]) -> Result<BTreeSet<String>> {
    let archived = archived_versions(rig).await?;
    Ok(pending
        .iter()
        .filter(|i| archived.get(&i.name).copied().unwrap_or(0) >= i.uploads)
        .map(|i| i.name.clone())
        .collect())
}
