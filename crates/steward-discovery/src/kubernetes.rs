//! Model discovery in a Kubernetes cluster: `steward inventory scan --kubernetes` asks a cluster's
//! API server where models run, through the `kube` client (TLS by rustls with *ring*, as the rest
//! of Steward).
//!
//! What is read, and why these:
//!
//! 1. KServe `InferenceService`s (`serving.kserve.io/v1beta1`): the predictor's model format
//!    (`spec.predictor.model.modelFormat`, or the older per-framework form
//!    `spec.predictor.sklearn`, `….xgboost`, …), runtime, storage URI, URL and `Ready` condition.
//! 2. Seldon Core `SeldonDeployment`s (`machinelearning.seldon.io/v1`): one workload per
//!    predictor (a canary serves another model than the main predictor, and the inventory must
//!    know both), from the first model node of the predictor's graph (`implementation`,
//!    `modelUri`, `name`); ready when `status.state` is `Available`.
//! 3. Pods that say they serve a model: [`POD_SELECTORS`], one listing per selector, merged by
//!    namespace/name. Pods of an `InferenceService` or a `SeldonDeployment` are left out, on the
//!    server by the selectors and here again by their labels: they are reported as the resource
//!    that made them. Each replica of a plain model server is its own workload.
//!
//! Every listing is paged (`limit`, then `continue` until the server gives none). A continue token
//! that has expired (410 Gone, as after etcd compaction on a long scan) is answered the way
//! client-go's pager does: one list of that resource without a limit. A custom resource the
//! cluster does not have (404 on its first page) means "none of this kind" and is named in
//! [`KubernetesScan::skipped`]; anything else — no credentials, no permission, no answer — fails
//! the scan with an error that says what to fix.
//!
//! So a scan costs ⌈I/page⌉ + ⌈S/page⌉ + Σ ⌈Pₛ/page⌉ requests over the three pod selectors, at
//! least five; `requests` in the result counts them.
//!
//! The model behind a workload, in order of trust: the Kubeflow model registry's name and version
//! labels (or annotations, where a name is too long for a label), then an MLflow registry URI in
//! the storage URI (`models:/fraud/3`, `models:/fraud@champion`), then `app.kubernetes.io/name`
//! and `app.kubernetes.io/version`. A digest comes from a KServe modelcar URI
//! (`oci://…@sha256:…`), else from the [`DIGEST_ANNOTATION`].
//!
//! The scan is idempotent: workloads are sorted by kind, namespace and name, maps are ordered, so
//! two scans of an unchanged cluster differ only in `scanned_at`. It reads a live cluster page by
//! page: each resource's pages are one consistent snapshot (the API server's continue tokens
//! guarantee it), the three resources are not one snapshot together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Items per page when the options do not say.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The annotation a team puts on a pod, `InferenceService` or `SeldonDeployment` to say which
/// artifact it serves when its storage URI does not pin one: `sha256:` and 64 hex digits, the
/// digest a file scan reports for the model file.
pub const DIGEST_ANNOTATION: &str = "steward.dev/artifact-digest";

/// The label selectors pods are listed with, one listing each: pods that call themselves a model
/// server (`app.kubernetes.io/component`), and pods the Kubeflow model registry deployed. Each
/// leaves out pods of KServe and Seldon, which are reported as their `InferenceService` or
/// `SeldonDeployment`.
pub const POD_SELECTORS: [&str; 3] = [
    "app.kubernetes.io/component in (model-server,inference,predictor,model),\
     !serving.kserve.io/inferenceservice,!seldon-deployment-id",
    "modelregistry.kubeflow.org/registered-model-id,\
     !serving.kserve.io/inferenceservice,!seldon-deployment-id",
    "modelregistry.kubeflow.org/model-version-id,\
     !serving.kserve.io/inferenceservice,!seldon-deployment-id",
];

/// Label prefixes copied into [`Workload::labels`]; other labels (`pod-template-hash`, a team's
/// own) say nothing about the model and would make two scans differ.
const KEPT_LABEL_PREFIXES: [&str; 3] = [
    "app.kubernetes.io/",
    "modelregistry.kubeflow.org/",
    "serving.kserve.io/",
];

/// KServe's label on the pods of an `InferenceService`.
const KSERVE_POD_LABEL: &str = "serving.kserve.io/inferenceservice";
/// Seldon Core's label on the pods of a `SeldonDeployment`.
const SELDON_POD_LABEL: &str = "seldon-deployment-id";

const REGISTRY_MODEL_NAME: &str = "modelregistry.kubeflow.org/registered-model-name";
const REGISTRY_VERSION_NAME: &str = "modelregistry.kubeflow.org/model-version-name";
const APP_NAME: &str = "app.kubernetes.io/name";
const APP_VERSION: &str = "app.kubernetes.io/version";

/// Container environment variables a plain model-server pod names its model in, by convention
/// (KServe's `STORAGE_URI`; `MODEL_URI` of MLflow and custom servers). Only literal values.
const POD_MODEL_URI_ENV: [&str; 2] = ["STORAGE_URI", "MODEL_URI"];

/// KServe's per-framework predictor fields (the form before `spec.predictor.model`, still
/// accepted), in the order they are looked for.
const KSERVE_FRAMEWORKS: [&str; 10] = [
    "sklearn",
    "xgboost",
    "lightgbm",
    "pytorch",
    "tensorflow",
    "onnx",
    "triton",
    "huggingface",
    "pmml",
    "paddle",
];

/// A custom resource the scan lists.
struct Crd {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    /// `plural.group`, as RBAC and `kubectl` spell it.
    resource: &'static str,
}

const INFERENCE_SERVICES: Crd = Crd {
    group: "serving.kserve.io",
    version: "v1beta1",
    kind: "InferenceService",
    plural: "inferenceservices",
    resource: "inferenceservices.serving.kserve.io",
};

const SELDON_DEPLOYMENTS: Crd = Crd {
    group: "machinelearning.seldon.io",
    version: "v1",
    kind: "SeldonDeployment",
    plural: "seldondeployments",
    resource: "seldondeployments.machinelearning.seldon.io",
};

const PODS: &str = "pods";

/// How a Kubernetes scan runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesOptions {
    /// The kubeconfig file; `None` reads `KUBECONFIG` (its files merged, as `kubectl` does) or
    /// `~/.kube/config`, and uses the in-cluster service account when there is neither.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None` is the kubeconfig's current context.
    pub context: Option<String>,
    /// Scan one namespace; `None` scans all, which needs cluster-wide list permission.
    pub namespace: Option<String>,
    /// Items per page of each listing ([`DEFAULT_PAGE_SIZE`]). The API server may return fewer.
    pub page_size: u32,
    /// How long one request may take, connecting and the API server's retries included.
    pub timeout: Duration,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        KubernetesOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            page_size: DEFAULT_PAGE_SIZE,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a scan of one cluster found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubernetesScan {
    /// The kubeconfig context's name; the server URL for an in-cluster scan.
    pub cluster: String,
    /// The API server's URL, without a trailing `/`.
    pub server: String,
    /// When the scan started.
    pub scanned_at: DateTime<Utc>,
    /// Sorted by kind, namespace, name.
    pub workloads: Vec<Workload>,
    /// HTTP requests the scan made (see the module docs for the count to expect).
    pub requests: u64,
    /// What could not be looked at and why, in words, e.g.
    /// "seldondeployments.machinelearning.seldon.io is not installed".
    pub skipped: Vec<String>,
}

/// What kind of Kubernetes resource a workload was found as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// A KServe `InferenceService`.
    Kserve,
    /// A predictor of a Seldon Core `SeldonDeployment`.
    Seldon,
    /// A pod labelled as a model server.
    Pod,
}

/// One place a model runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    /// The resource's name; for Seldon `deployment/predictor` (one workload per predictor).
    pub name: String,
    /// The model it serves: the Kubeflow registry's model name, the name in an MLflow registry
    /// URI, `app.kubernetes.io/name`, and for Seldon last the graph node's name (the name the
    /// model is served under).
    pub model_name: Option<String>,
    /// The Kubeflow registry's version name, the version number in an MLflow registry URI, or
    /// `app.kubernetes.io/version`. An MLflow alias or stage is not a version: `None` then.
    pub model_version: Option<String>,
    /// KServe's model format name, with its version after a `/` when given (`tensorflow/1.15`);
    /// the framework field of the older KServe form (`xgboost`); the format a Seldon prepackaged
    /// server takes (`sklearn` for `SKLEARN_SERVER`).
    pub model_format: Option<String>,
    /// KServe's serving runtime (`kserve-mlserver`), from the spec or, when KServe chose it, the
    /// status; Seldon's graph `implementation` (`MLFLOW_SERVER`).
    pub runtime: Option<String>,
    /// Where the model is loaded from: KServe's `storageUri`, Seldon's `modelUri`, a pod's
    /// `STORAGE_URI` or `MODEL_URI` environment variable.
    pub storage_uri: Option<String>,
    /// `sha256:` and 64 lowercase hex digits, from an `oci://…@sha256:…` storage URI (a KServe
    /// modelcar pinned by digest), else from the [`DIGEST_ANNOTATION`].
    pub digest: Option<String>,
    /// Where it answers: KServe's and Seldon's `status.url` / `status.address.url`.
    pub url: Option<String>,
    /// KServe: the `Ready` condition is `True`; Seldon: the state is `Available`; a pod: its
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// Only the `app.kubernetes.io/*`, `modelregistry.kubeflow.org/*` and `serving.kserve.io/*`
    /// labels.
    pub labels: BTreeMap<String, String>,
    /// Container images: a pod's containers (init containers left out); the images a KServe
    /// predictor or Seldon predictor names, where it names any. In order, without repeats.
    pub images: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Where a running scan is; sent after each page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubernetesProgress {
    /// `inferenceservices.serving.kserve.io`, `seldondeployments.machinelearning.seldon.io` or
    /// `pods`.
    pub resource: &'static str,
    /// Items of this resource listed so far (for pods, under the current selector).
    pub items: u64,
    /// Requests made so far, all resources.
    pub requests: u64,
}

/// Why a scan of a cluster failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KubernetesScanError {
    #[error("cannot use the Kubernetes configuration: {message}")]
    Config { message: String },
    #[error(
        "cannot reach the Kubernetes API server at {server}: {message}; check that the context \
         points at the right cluster (`kubectl config get-contexts`), that the server is \
         reachable from here (VPN, firewall, proxy) and, for https, that the kubeconfig's \
         certificate authority is the cluster's"
    )]
    Unreachable { server: String, message: String },
    #[error("{}", forbidden_text(.server, .resource, .namespace, .status, .message))]
    Forbidden {
        server: String,
        /// `plural.group`, as RBAC and `kubectl auth can-i` spell it (`pods` for the core group).
        resource: String,
        /// The namespace scanned; `None` for all namespaces.
        namespace: Option<String>,
        /// 401 (credentials missing or rejected) or 403 (no permission).
        status: u16,
        /// The API server's message.
        message: String,
    },
    #[error(
        "the Kubernetes API server at {server} answered the list of {resource} with {}: {message}{}",
        status_text(.status, .reason),
        api_hint(.status)
    )]
    Api {
        server: String,
        resource: String,
        /// The HTTP status; `None` when the answer was a success that could not be read.
        status: Option<u16>,
        /// The API server's reason (`NotFound`, `InternalError`, …), where it gave one.
        reason: String,
        message: String,
    },
}

fn forbidden_text(
    server: &str,
    resource: &str,
    namespace: &Option<String>,
    status: &u16,
    message: &str,
) -> String {
    if *status == 401 {
        return format!(
            "the Kubernetes API server at {server} did not accept the credentials (401 \
             Unauthorized: {message}): the kubeconfig's token or client certificate is missing, \
             expired or for another cluster; log in again (or refresh the cloud provider's \
             credentials) and check with `kubectl get {resource}`"
        );
    }
    let (scope, flag, grant) = match namespace {
        Some(ns) => (
            format!("in namespace {ns}"),
            format!("-n {ns}"),
            format!("a Role (or ClusterRole) bound by a RoleBinding in {ns}"),
        ),
        None => (
            "in all namespaces".to_owned(),
            "--all-namespaces".to_owned(),
            "a ClusterRole bound by a ClusterRoleBinding (or scan one namespace you may read)"
                .to_owned(),
        ),
    };
    format!(
        "the Kubernetes API server at {server} refused to list {resource} {scope} ({status} \
         Forbidden: {message}): the scan needs list on {resource} {scope}; grant it to this user \
         or service account through {grant}, and check with `kubectl auth can-i list \
         {resource} {flag}`"
    )
}

fn status_text(status: &Option<u16>, reason: &str) -> String {
    match (status, reason.is_empty()) {
        (Some(status), false) => format!("{status} {reason}"),
        (Some(status), true) => status.to_string(),
        (None, _) => "an answer that is not a Kubernetes list".to_owned(),
    }
}

fn api_hint(status: &Option<u16>) -> &'static str {
    match status {
        Some(404) => "; is the server address that of a Kubernetes API server, without a path?",
        Some(429) => {
            "; the API server is overloaded: scan again later, or with a smaller page size"
        }
        Some(500..) => "; the API server failed: its log and `kubectl get --raw /readyz` say why",
        None => "; is the server address that of a Kubernetes API server?",
        _ => "",
    }
}

/// Scans the cluster of the kubeconfig (`options.kubeconfig`, else `KUBECONFIG` or
/// `~/.kube/config`; `options.context`, else the current context), or the cluster the process
/// runs in (its service account) when there is no kubeconfig, calling `progress` after each page.
///
/// Needs a tokio runtime. Fails as a whole — one cluster is one source — when the configuration
/// cannot be used or the API server cannot be reached or refuses a listing.
pub async fn scan(
    options: &KubernetesOptions,
    progress: &mut (dyn FnMut(KubernetesProgress) + Send),
) -> Result<KubernetesScan, KubernetesScanError> {
    let (mut config, cluster) = load_config(options).await?;
    let server = server_url(&config);
    config.connect_timeout = Some(options.timeout);
    config.read_timeout = Some(options.timeout);
    let client = kube::Client::try_from(config).map_err(|e| KubernetesScanError::Config {
        message: format!(
            "cannot set up a client for {server}: {}; check the certificate and key files the \
             kubeconfig names",
            root_cause(&e)
        ),
    })?;
    scan_with(client, &cluster, &server, options, progress).await
}

/// Scans with a client already made — a test's, or a server's scanning its own cluster.
/// `cluster` and `server` are what the result and the error messages call the cluster; the
/// client decides where the requests go. `options.kubeconfig` and `options.context` are not used.
pub async fn scan_with(
    client: kube::Client,
    cluster: &str,
    server: &str,
    options: &KubernetesOptions,
    progress: &mut (dyn FnMut(KubernetesProgress) + Send),
) -> Result<KubernetesScan, KubernetesScanError> {
    let scanned_at = Utc::now();
    if options.page_size == 0 {
        return Err(KubernetesScanError::Config {
            message: "the page size must be at least 1".to_owned(),
        });
    }
    let server = server.trim_end_matches('/');
    let mut scanner = Scanner {
        client,
        server: server.to_owned(),
        namespace: options.namespace.clone(),
        page_size: options.page_size,
        timeout: options.timeout,
        requests: 0,
        progress,
    };
    let mut workloads = Vec::new();
    let mut skipped = Vec::new();

    match scanner.list_crd(&INFERENCE_SERVICES).await? {
        Some(items) => workloads.extend(items.iter().map(kserve_workload)),
        None => skipped.push(not_installed(&INFERENCE_SERVICES)),
    }
    match scanner.list_crd(&SELDON_DEPLOYMENTS).await? {
        Some(items) => workloads.extend(items.iter().flat_map(seldon_workloads)),
        None => skipped.push(not_installed(&SELDON_DEPLOYMENTS)),
    }
    let mut pods: BTreeMap<(String, String), Pod> = BTreeMap::new();
    for selector in POD_SELECTORS {
        let api: Api<Pod> = match &scanner.namespace {
            Some(ns) => Api::namespaced(scanner.client.clone(), ns),
            None => Api::all(scanner.client.clone()),
        };
        let listed = scanner
            .list(&api, PODS, Some(selector), false)
            .await?
            .unwrap_or_default();
        for pod in listed {
            let key = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            pods.entry(key).or_insert(pod);
        }
    }
    workloads.extend(pods.values().filter_map(pod_workload));

    workloads.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    Ok(KubernetesScan {
        cluster: cluster.to_owned(),
        server: server.to_owned(),
        scanned_at,
        workloads,
        requests: scanner.requests,
        skipped,
    })
}

fn not_installed(crd: &Crd) -> String {
    format!("{} is not installed", crd.resource)
}

/// The client configuration and the name the scan gives the cluster.
async fn load_config(
    options: &KubernetesOptions,
) -> Result<(kube::Config, String), KubernetesScanError> {
    let config_error = |message: String| KubernetesScanError::Config { message };
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            config_error(format!(
                "cannot read the kubeconfig {}: {}",
                path.display(),
                root_cause(&e)
            ))
        })?),
        None => match Kubeconfig::read() {
            Ok(kubeconfig) => Some(kubeconfig),
            Err(KubeconfigError::FindPath) => None,
            Err(KubeconfigError::ReadConfig(e, _)) if e.kind() == std::io::ErrorKind::NotFound => {
                None
            }
            Err(e) => {
                return Err(config_error(format!(
                    "cannot read the kubeconfig (KUBECONFIG, else ~/.kube/config): {}",
                    root_cause(&e)
                )));
            }
        },
    };
    let Some(kubeconfig) = kubeconfig else {
        if let Some(context) = &options.context {
            return Err(config_error(format!(
                "context {context} was asked for, but there is no kubeconfig (KUBECONFIG is unset \
                 or names no file, and there is no ~/.kube/config): give the kubeconfig file"
            )));
        }
        let config = kube::Config::incluster().map_err(|e| {
            config_error(format!(
                "there is no kubeconfig (KUBECONFIG is unset or names no file, and there is no \
                 ~/.kube/config), and this is not a pod with a service account ({}): give the \
                 kubeconfig file of the cluster to scan",
                root_cause(&e)
            ))
        })?;
        let server = server_url(&config);
        return Ok((config, server));
    };
    let context = options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone());
    let contexts: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|e| {
            let known = if contexts.is_empty() {
                "it has no contexts".to_owned()
            } else {
                format!("its contexts: {}", contexts.join(", "))
            };
            let what = match &context {
                Some(context) => format!("context {context}"),
                None => "the current context (the kubeconfig names none)".to_owned(),
            };
            config_error(format!(
                "cannot use {what} of the kubeconfig ({known}): {}",
                root_cause(&e)
            ))
        })?;
    let server = server_url(&config);
    Ok((config, context.unwrap_or(server)))
}

fn server_url(config: &kube::Config) -> String {
    config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned()
}

/// The innermost cause of an error: for a refused connection "Connection refused (os error
/// 111)" rather than "client error (Connect)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

struct Scanner<'p> {
    client: kube::Client,
    server: String,
    namespace: Option<String>,
    page_size: u32,
    timeout: Duration,
    requests: u64,
    progress: &'p mut (dyn FnMut(KubernetesProgress) + Send),
}

/// Why one request failed.
enum Failure {
    Kube(kube::Error),
    Timeout,
}

impl Scanner<'_> {
    /// Every item of a custom resource; `None` when the cluster does not have the resource.
    async fn list_crd(
        &mut self,
        crd: &Crd,
    ) -> Result<Option<Vec<DynamicObject>>, KubernetesScanError> {
        let gvk = GroupVersionKind::gvk(crd.group, crd.version, crd.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, crd.plural);
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        self.list(&api, crd.resource, None, true).await
    }

    /// Every page of a listing. `optional`: a 404 on the first page means the resource is not
    /// installed (`None`) rather than a failure.
    async fn list<K>(
        &mut self,
        api: &Api<K>,
        resource: &'static str,
        selector: Option<&str>,
        optional: bool,
    ) -> Result<Option<Vec<K>>, KubernetesScanError>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        let params = |limit: Option<u32>, token: Option<&str>| {
            let mut params = ListParams::default();
            if let Some(limit) = limit {
                params = params.limit(limit);
            }
            if let Some(selector) = selector {
                params = params.labels(selector);
            }
            if let Some(token) = token {
                params = params.continue_token(token);
            }
            params
        };
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut seen_tokens = BTreeSet::new();
        loop {
            let page = match self
                .request(api, &params(Some(self.page_size), token.as_deref()))
                .await
            {
                Ok(page) => page,
                Err(Failure::Kube(kube::Error::Api(status)))
                    if status.code == 404 && optional && token.is_none() =>
                {
                    return Ok(None);
                }
                Err(Failure::Kube(kube::Error::Api(status)))
                    if status.code == 410 && token.is_some() =>
                {
                    // The continue token expired: start over with one unpaged list, which the
                    // API server serves from its watch cache or in one read.
                    let page = self
                        .request(api, &params(None, None))
                        .await
                        .map_err(|f| self.error(f, resource))?;
                    items = page.items;
                    self.report(resource, items.len());
                    return Ok(Some(items));
                }
                Err(failure) => return Err(self.error(failure, resource)),
            };
            items.extend(page.items);
            self.report(resource, items.len());
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(next) => {
                    if !seen_tokens.insert(next.clone()) {
                        return Err(KubernetesScanError::Api {
                            server: self.server.clone(),
                            resource: resource.to_owned(),
                            status: None,
                            reason: String::new(),
                            message: "the same continue token came back twice, so the listing \
                                      would never end"
                                .to_owned(),
                        });
                    }
                    token = Some(next);
                }
                None => return Ok(Some(items)),
            }
        }
    }

    async fn request<K>(
        &mut self,
        api: &Api<K>,
        params: &ListParams,
    ) -> Result<ObjectList<K>, Failure>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.requests += 1;
        match tokio::time::timeout(self.timeout, api.list(params)).await {
            Ok(result) => result.map_err(Failure::Kube),
            Err(_) => Err(Failure::Timeout),
        }
    }

    fn report(&mut self, resource: &'static str, items: usize) {
        (self.progress)(KubernetesProgress {
            resource,
            items: items as u64,
            requests: self.requests,
        });
    }

    fn error(&self, failure: Failure, resource: &str) -> KubernetesScanError {
        let server = self.server.clone();
        let error = match failure {
            Failure::Timeout => {
                return KubernetesScanError::Unreachable {
                    server,
                    message: format!(
                        "no answer to the list of {resource} within {:?}",
                        self.timeout
                    ),
                };
            }
            Failure::Kube(error) => error,
        };
        match error {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
                KubernetesScanError::Forbidden {
                    server,
                    resource: resource.to_owned(),
                    namespace: self.namespace.clone(),
                    status: status.code,
                    message: status.message,
                }
            }
            kube::Error::Api(status) => KubernetesScanError::Api {
                server,
                resource: resource.to_owned(),
                status: Some(status.code),
                reason: status.reason,
                message: status.message,
            },
            kube::Error::Auth(e) => KubernetesScanError::Config {
                message: format!(
                    "cannot get credentials for {server}: {}; run the kubeconfig's login or \
                     `kubectl get {resource}` by hand to see why",
                    root_cause(&e)
                ),
            },
            kube::Error::Service(e) if e.downcast_ref::<kube::client::AuthError>().is_some() => {
                KubernetesScanError::Config {
                    message: format!(
                        "cannot get credentials for {server}: {}; run the kubeconfig's login or \
                         `kubectl get {resource}` by hand to see why",
                        root_cause(e.as_ref())
                    ),
                }
            }
            kube::Error::HyperError(e) => KubernetesScanError::Unreachable {
                server,
                message: root_cause(&e),
            },
            kube::Error::Service(e) => KubernetesScanError::Unreachable {
                server,
                message: root_cause(e.as_ref()),
            },
            kube::Error::SerdeError(e) => KubernetesScanError::Api {
                server,
                resource: resource.to_owned(),
                status: None,
                reason: String::new(),
                message: format!("not the list expected: {e}"),
            },
            other => KubernetesScanError::Api {
                server,
                resource: resource.to_owned(),
                status: None,
                reason: String::new(),
                message: root_cause(&other),
            },
        }
    }
}

// From Kubernetes objects to workloads. The custom resources are read as JSON: their schemas
// are the operators', and only a few fields matter here.

/// What every kind of workload takes from the object's metadata.
fn base_workload(kind: WorkloadKind, meta: &ObjectMeta, name: String) -> Workload {
    let labels: BTreeMap<String, String> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| KEPT_LABEL_PREFIXES.iter().any(|p| key.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Workload {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name,
        model_name: None,
        model_version: None,
        model_format: None,
        runtime: None,
        storage_uri: None,
        digest: None,
        url: None,
        ready: false,
        labels,
        images: Vec::new(),
        created_at: meta.creation_timestamp.as_ref().and_then(time),
    }
}

/// Fills the model's name, version and digest from the metadata and the storage URI, in the
/// order of trust the module docs give; `fallback_name` comes last.
fn identify_model(workload: &mut Workload, meta: &ObjectMeta, fallback_name: Option<&str>) {
    let label = |key: &str| {
        let from = |map: &Option<BTreeMap<String, String>>| {
            map.as_ref()
                .and_then(|m| m.get(key))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        from(&meta.labels).or_else(|| from(&meta.annotations))
    };
    let mlflow = workload.storage_uri.as_deref().and_then(parse_mlflow_uri);
    workload.model_name = label(REGISTRY_MODEL_NAME)
        .or_else(|| mlflow.as_ref().map(|m| m.name.clone()))
        .or_else(|| label(APP_NAME))
        .or_else(|| fallback_name.filter(|n| !n.is_empty()).map(str::to_owned));
    workload.model_version = label(REGISTRY_VERSION_NAME)
        .or_else(|| mlflow.and_then(|m| m.version))
        .or_else(|| label(APP_VERSION));
    workload.digest = workload
        .storage_uri
        .as_deref()
        .and_then(oci_digest)
        .or_else(|| {
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(DIGEST_ANNOTATION))
                .and_then(|d| sha256_digest(d.trim()))
        });
}

fn kserve_workload(isvc: &DynamicObject) -> Workload {
    let meta = &isvc.metadata;
    let mut workload = base_workload(
        WorkloadKind::Kserve,
        meta,
        meta.name.clone().unwrap_or_default(),
    );
    let predictor = &isvc.data["spec"]["predictor"];
    let status = &isvc.data["status"];
    let mut images = Vec::new();
    if let Some(model) = predictor.get("model").filter(|m| m.is_object()) {
        let format = text(&model["modelFormat"]["name"]);
        let version = text(&model["modelFormat"]["version"]);
        workload.model_format = match (format, version) {
            (Some(format), Some(version)) => Some(format!("{format}/{version}")),
            (format, _) => format,
        };
        workload.runtime = text(&model["runtime"]);
        workload.storage_uri = text(&model["storageUri"]);
        images.extend(text(&model["image"]));
    } else if let Some((framework, spec)) = KSERVE_FRAMEWORKS
        .iter()
        .find_map(|f| predictor.get(*f).filter(|s| s.is_object()).map(|s| (*f, s)))
    {
        workload.model_format = Some(framework.to_owned());
        workload.storage_uri = text(&spec["storageUri"]);
        images.extend(text(&spec["image"]));
    }
    workload.runtime = workload
        .runtime
        .take()
        .or_else(|| text(&status["servingRuntimeName"]))
        .or_else(|| text(&status["clusterServingRuntimeName"]));
    for container in predictor["containers"].as_array().into_iter().flatten() {
        images.extend(text(&container["image"]));
    }
    workload.images = dedup(images);
    workload.url = text(&status["url"]).or_else(|| text(&status["address"]["url"]));
    workload.ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    identify_model(&mut workload, meta, None);
    workload
}

/// One workload per predictor of a `SeldonDeployment`.
fn seldon_workloads(sdep: &DynamicObject) -> Vec<Workload> {
    let meta = &sdep.metadata;
    let deployment = meta.name.clone().unwrap_or_default();
    let status = &sdep.data["status"];
    let ready = status["state"] == "Available";
    let url = text(&status["address"]["url"]);
    sdep.data["spec"]["predictors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|predictor| {
            let predictor_name = text(&predictor["name"]).unwrap_or_default();
            let mut workload = base_workload(
                WorkloadKind::Seldon,
                meta,
                format!("{deployment}/{predictor_name}"),
            );
            let node = model_node(&predictor["graph"]).unwrap_or(&predictor["graph"]);
            let implementation = text(&node["implementation"]);
            workload.model_format = implementation
                .as_deref()
                .and_then(seldon_format)
                .map(str::to_owned);
            workload.runtime = implementation;
            workload.storage_uri = text(&node["modelUri"]);
            let images = predictor["componentSpecs"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["spec"]["containers"].as_array().into_iter().flatten())
                .filter_map(|c| text(&c["image"]))
                .collect();
            workload.images = dedup(images);
            workload.url = url.clone();
            workload.ready = ready;
            let node_name = text(&node["name"]);
            identify_model(&mut workload, meta, node_name.as_deref());
            workload
        })
        .collect()
}

/// The first node of a Seldon inference graph, depth first, that is a model: one of type
/// `MODEL`, or one that loads a model (`modelUri`) or names a prepackaged model server.
fn model_node(node: &Value) -> Option<&Value> {
    let is_model = node["type"] == "MODEL"
        || text(&node["modelUri"]).is_some()
        || text(&node["implementation"]).is_some_and(|i| i.ends_with("_SERVER"));
    if is_model {
        return Some(node);
    }
    node["children"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(model_node)
}

/// The model format a Seldon Core prepackaged server loads; `None` for servers of many formats
/// (`TRITON_SERVER`) and custom ones.
fn seldon_format(implementation: &str) -> Option<&'static str> {
    Some(match implementation {
        "SKLEARN_SERVER" => "sklearn",
        "XGBOOST_SERVER" => "xgboost",
        "TENSORFLOW_SERVER" => "tensorflow",
        "MLFLOW_SERVER" => "mlflow",
        "HUGGINGFACE_SERVER" => "huggingface",
        _ => return None,
    })
}

/// A pod labelled as a model server; `None` for pods of KServe and Seldon.
fn pod_workload(pod: &Pod) -> Option<Workload> {
    let meta = &pod.metadata;
    let labels = meta.labels.as_ref();
    if labels.is_some_and(|l| l.contains_key(KSERVE_POD_LABEL) || l.contains_key(SELDON_POD_LABEL))
    {
        return None;
    }
    let mut workload = base_workload(
        WorkloadKind::Pod,
        meta,
        meta.name.clone().unwrap_or_default(),
    );
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    workload.images = dedup(containers.iter().filter_map(|c| c.image.clone()).collect());
    workload.storage_uri = POD_MODEL_URI_ENV.iter().find_map(|name| {
        containers
            .iter()
            .flat_map(|c| c.env.iter().flatten())
            .find(|e| e.name == *name)
            .and_then(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    });
    workload.ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    identify_model(&mut workload, meta, None);
    Some(workload)
}

/// A model in an MLflow registry URI.
#[derive(Debug, PartialEq, Eq)]
struct MlflowModel {
    name: String,
    /// The version number; `None` for an alias (`@champion`), a stage (`/Production`) or
    /// `/latest`.
    version: Option<String>,
}

/// `models:/fraud/3` → fraud, 3; `models:/fraud@champion` → fraud; `models:/fraud/Production` →
/// fraud; also `models://profile@databricks/fraud/3` (a registry named by profile).
fn parse_mlflow_uri(uri: &str) -> Option<MlflowModel> {
    let rest = uri.strip_prefix("models:")?;
    let path = match rest.strip_prefix("//") {
        // An authority (a Databricks profile) before the path.
        Some(with_authority) => &with_authority[with_authority.find('/')?..],
        None => rest,
    };
    let path = path.trim_start_matches('/').trim_end_matches('/');
    let (name, version) = match path.rsplit_once('@') {
        Some((name, _alias)) => (name, None),
        None => match path.rsplit_once('/') {
            Some((name, suffix)) => (
                name,
                Some(suffix)
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_owned),
            ),
            None => (path, None),
        },
    };
    if name.is_empty() {
        return None;
    }
    Some(MlflowModel {
        name: name.to_owned(),
        version,
    })
}

/// `sha256:<hex>` of an `oci://…@sha256:<hex>` URI (a KServe modelcar pinned by digest).
fn oci_digest(uri: &str) -> Option<String> {
    let reference = uri.strip_prefix("oci://")?;
    let (_, digest) = reference.rsplit_once('@')?;
    sha256_digest(digest)
}

/// `sha256:` and 64 hex digits, lowercased; `None` for anything else.
fn sha256_digest(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// A non-empty JSON string.
fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

fn time(t: &Time) -> Option<DateTime<Utc>> {
    let nanos = i64::try_from(t.0.as_nanosecond()).ok()?;
    Some(DateTime::from_timestamp_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mlflow_registry_uris_name_the_model_and_a_version_only_when_numeric() {
        let check = |uri: &str, expected: Option<(&str, Option<&str>)>| {
            let expected = expected.map(|(name, version)| MlflowModel {
                name: name.to_owned(),
                version: version.map(str::to_owned),
            });
            assert_eq!(parse_mlflow_uri(uri), expected, "{uri}");
        };
        check("models:/fraud/3", Some(("fraud", Some("3"))));
        check("models:/fraud@champion", Some(("fraud", None)));
        check("models:/fraud/Production", Some(("fraud", None)));
        check("models:/fraud/latest", Some(("fraud", None)));
        check("models:/fraud", Some(("fraud", None)));
        check(
            "models://work@databricks/main.risk.fraud/12",
            Some(("main.risk.fraud", Some("12"))),
        );
        check("models:/", None);
        check("runs:/0a1b/model", None);
        check("s3://bucket/models/fraud/3", None);
    }

    #[test]
    fn modelcar_uris_pinned_by_digest_give_the_digest() {
        let hex = "3b5c2b9d0f6e4a1c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
        assert_eq!(
            oci_digest(&format!("oci://reg/fraud@sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            oci_digest(&format!(
                "oci://registry.example.com:5000/models/fraud:3@sha256:{}",
                hex.to_ascii_uppercase()
            )),
            Some(format!("sha256:{hex}")),
            "a tag and a port before the digest, and upper case hex"
        );
        assert_eq!(oci_digest("oci://reg/fraud:3"), None, "a tag is no digest");
        assert_eq!(oci_digest("oci://reg/fraud@sha256:abc"), None, "too short");
        assert_eq!(oci_digest(&format!("s3://b/fraud@sha256:{hex}")), None);
        assert_eq!(sha256_digest(&format!("sha512:{hex}")), None);
    }

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).expect("a valid object")
    }

    #[test]
    fn the_older_per_framework_kserve_form_gives_the_format() {
        let isvc = object(json!({
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "sklearn-iris", "namespace": "kserve-test"},
            "spec": {"predictor": {"sklearn": {
                "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                "image": "kserve/sklearnserver:v0.14.1"
            }}},
            "status": {"clusterServingRuntimeName": "kserve-sklearnserver",
                       "conditions": [{"type": "Ready", "status": "False"}]}
        }));
        let workload = kserve_workload(&isvc);
        assert_eq!(workload.model_format.as_deref(), Some("sklearn"));
        assert_eq!(
            workload.storage_uri.as_deref(),
            Some("gs://kfserving-examples/models/sklearn/1.0/model")
        );
        assert_eq!(workload.runtime.as_deref(), Some("kserve-sklearnserver"));
        assert_eq!(workload.images, ["kserve/sklearnserver:v0.14.1"]);
        assert!(!workload.ready);
        assert_eq!(
            workload.model_name, None,
            "the service's name is not a model name"
        );
    }

    #[test]
    fn registry_labels_outrank_the_mlflow_uri_which_outranks_app_labels() {
        let isvc = |labels: Value| {
            kserve_workload(&object(json!({
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "f", "namespace": "n", "labels": labels},
                "spec": {"predictor": {"model": {
                    "modelFormat": {"name": "mlflow", "version": "2"},
                    "storageUri": "models:/fraud/3"
                }}}
            })))
        };
        let app = json!({"app.kubernetes.io/name": "fraud-app", "app.kubernetes.io/version": "9"});
        let w = isvc(app.clone());
        assert_eq!(
            (w.model_name.as_deref(), w.model_version.as_deref()),
            (Some("fraud"), Some("3"))
        );
        assert_eq!(w.model_format.as_deref(), Some("mlflow/2"));
        let mut registry = app;
        registry[REGISTRY_MODEL_NAME] = json!("fraud-detection");
        registry[REGISTRY_VERSION_NAME] = json!("v3");
        registry["team"] = json!("risk");
        let w = isvc(registry);
        assert_eq!(
            (w.model_name.as_deref(), w.model_version.as_deref()),
            (Some("fraud-detection"), Some("v3"))
        );
        assert!(!w.labels.contains_key("team"), "{:?}", w.labels);
        assert_eq!(w.labels.len(), 4);
    }

    #[test]
    fn a_seldon_graph_is_searched_depth_first_for_its_model() {
        let graph = json!({
            "name": "feature-transformer", "type": "TRANSFORMER",
            "children": [{"name": "router", "type": "ROUTER", "children": [
                {"name": "classifier", "implementation": "XGBOOST_SERVER",
                 "modelUri": "s3://models/churn/7"}
            ]}]
        });
        assert_eq!(
            model_node(&graph).map(|n| &n["name"]),
            Some(&json!("classifier"))
        );
        assert_eq!(
            model_node(&json!({"name": "router", "type": "ROUTER"})),
            None
        );
    }

    #[test]
    fn pods_of_kserve_and_seldon_are_not_reported_as_pods() {
        let pod = |labels: Value| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "namespace": "n", "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]}
            }))
            .expect("a pod")
        };
        let component = json!({"app.kubernetes.io/component": "predictor"});
        assert!(pod_workload(&pod(component.clone())).is_some());
        let mut kserve = component.clone();
        kserve[KSERVE_POD_LABEL] = json!("sklearn-iris");
        assert!(pod_workload(&pod(kserve)).is_none());
        let mut seldon = component;
        seldon[SELDON_POD_LABEL] = json!("iris-model");
        assert!(pod_workload(&pod(seldon)).is_none());
    }

    #[test]
    fn a_scan_can_run_on_any_tokio_worker() {
        fn send<T: Send>(_: &T) {}
        let options = KubernetesOptions::default();
        let mut progress = |_: KubernetesProgress| {};
        let future = scan(&options, &mut progress);
        send(&future);
    }
}
