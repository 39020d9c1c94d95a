//! The Kubernetes scan against a fake API server: no real API server can run here, so a small
//! axum server answers the three listings with full list bodies as a real one returns them
//! (`tests/fixtures/kubernetes/`), honours `limit`, `continue` and `labelSelector`, answers an
//! unknown continue token with 410 Gone and a missing custom resource with 404, both with a real
//! `Status` body, and logs every request so the tests can see that paging was followed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steward_discovery::kubernetes::{
    self, KubernetesOptions, KubernetesProgress, KubernetesScan, KubernetesScanError, Workload,
    WorkloadKind,
};

const KSERVE_PATH: &str = "/apis/serving.kserve.io/v1beta1";
const SELDON_PATH: &str = "/apis/machinelearning.seldon.io/v1";
const CORE_PATH: &str = "/api/v1";

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// How the fake API server misbehaves, if at all.
#[derive(Default)]
struct Behaviour {
    /// Resources (plural) answered with 404, as for a CRD that is not installed.
    not_installed: Vec<&'static str>,
    /// Resources (plural) answered with 403.
    forbidden: Vec<&'static str>,
    /// Every continue token has expired (410), as after etcd compaction.
    expire_continue_tokens: bool,
    /// The bearer token a request must carry; `None` takes any request.
    bearer: Option<&'static str>,
}

/// One request as the fake server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Logged {
    path: String,
    limit: Option<usize>,
    continue_token: Option<String>,
    label_selector: Option<String>,
    status: u16,
}

struct FakeApiServer {
    /// Resource plural → the full list of every item, as the API server would return it unpaged.
    lists: HashMap<&'static str, Value>,
    behaviour: Behaviour,
    log: Mutex<Vec<Logged>>,
    /// Continue token → (the listing it continues, the offset of the next item).
    tokens: Mutex<HashMap<String, (String, usize)>>,
}

impl FakeApiServer {
    fn new(behaviour: Behaviour) -> FakeApiServer {
        let lists = HashMap::from([
            ("inferenceservices", fixture("inferenceservices.json")),
            ("seldondeployments", fixture("seldondeployments.json")),
            ("pods", fixture("pods.json")),
        ]);
        FakeApiServer {
            lists,
            behaviour,
            log: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn log(&self) -> Vec<Logged> {
        self.log.lock().expect("log lock").clone()
    }

    fn requests_to(&self, resource: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|r| r.path.ends_with(&format!("/{resource}")))
            .collect()
    }
}

/// Serves the fake API server on 127.0.0.1 and gives its URL.
async fn spawn(server: FakeApiServer) -> (String, Arc<FakeApiServer>) {
    let server = Arc::new(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let app = Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&server));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, server)
}

async fn serve(
    State(api): State<Arc<FakeApiServer>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path().to_owned();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let continue_token = query.get("continue").filter(|c| !c.is_empty()).cloned();
    let label_selector = query
        .get("labelSelector")
        .filter(|s| !s.is_empty())
        .cloned();
    let (status, body) = answer(
        &api,
        &path,
        &headers,
        limit,
        continue_token.as_deref(),
        label_selector.as_deref(),
    );
    api.log.lock().expect("log lock").push(Logged {
        path,
        limit,
        continue_token,
        label_selector,
        status: status.as_u16(),
    });
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("audit-id"),
                "5e4b2f0c-1a3d-4c8e-9b7a-6d5f4e3c2b1a",
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

fn answer(
    api: &FakeApiServer,
    path: &str,
    headers: &HeaderMap,
    limit: Option<usize>,
    continue_token: Option<&str>,
    label_selector: Option<&str>,
) -> (StatusCode, Value) {
    if let Some(bearer) = api.behaviour.bearer {
        let expected = format!("Bearer {bearer}");
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(&expected)
        {
            return (
                StatusCode::UNAUTHORIZED,
                fixture("status-unauthorized.json"),
            );
        }
    }
    // /api/v1[/namespaces/NS]/pods, /apis/GROUP/VERSION[/namespaces/NS]/PLURAL
    let rest = [KSERVE_PATH, SELDON_PATH, CORE_PATH]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix));
    let segments: Vec<&str> = rest
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (namespace, resource) = match segments.as_slice() {
        [resource] => (None, *resource),
        ["namespaces", namespace, resource] => (Some(*namespace), *resource),
        _ => return (StatusCode::NOT_FOUND, fixture("status-not-found.json")),
    };
    let expected_prefix = match resource {
        "inferenceservices" => KSERVE_PATH,
        "seldondeployments" => SELDON_PATH,
        "pods" => CORE_PATH,
        _ => "",
    };
    if !path.starts_with(expected_prefix)
        || expected_prefix.is_empty()
        || api.behaviour.not_installed.contains(&resource)
    {
        return (StatusCode::NOT_FOUND, fixture("status-not-found.json"));
    }
    if api.behaviour.forbidden.contains(&resource) {
        return (StatusCode::FORBIDDEN, fixture("status-forbidden-pods.json"));
    }
    let list = &api.lists[resource];
    let resource_version = list["metadata"]["resourceVersion"].clone();
    let items: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| namespace.is_none_or(|ns| item["metadata"]["namespace"] == ns))
        .filter(|item| label_selector.is_none_or(|s| selects(s, &item["metadata"]["labels"])))
        .collect();
    let listing = format!("{path}?{}", label_selector.unwrap_or_default());
    let offset = match continue_token {
        None => 0,
        Some(token) => {
            let known = api.tokens.lock().expect("token lock").get(token).cloned();
            match known {
                Some((of, offset)) if of == listing && !api.behaviour.expire_continue_tokens => {
                    offset
                }
                _ => return (StatusCode::GONE, fixture("status-expired.json")),
            }
        }
    };
    let end = limit.map_or(items.len(), |l| (offset + l).min(items.len()));
    let page: Vec<Value> = items[offset.min(end)..end]
        .iter()
        .map(|i| (*i).clone())
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if end < items.len() {
        // A real token: base64 of the resource version and the key to start after.
        let last = &items[end - 1]["metadata"];
        let key = format!(
            "{}/{}\u{0}",
            last["namespace"].as_str().unwrap_or_default(),
            last["name"].as_str().unwrap_or_default()
        );
        let token = base64(
            json!({"v": "meta.k8s.io/v1", "rv": resource_version.as_str().and_then(|v| v.parse::<u64>().ok()), "start": key})
                .to_string()
                .as_bytes(),
        );
        api.tokens
            .lock()
            .expect("token lock")
            .insert(token.clone(), (listing, end));
        metadata["continue"] = json!(token);
        if label_selector.is_none() {
            // The API server counts the rest only when it need not filter.
            metadata["remainingItemCount"] = json!(items.len() - end);
        }
    }
    let mut body = list.clone();
    body["metadata"] = metadata;
    body["items"] = Value::Array(page);
    (StatusCode::OK, body)
}

/// Whether labels match a label selector: `key`, `!key`, `key=value`, `key==value`,
/// `key!=value`, `key in (a,b)`, `key notin (a,b)`, joined by commas.
fn selects(selector: &str, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key.trim()).and_then(Value::as_str);
    let set = |list: &str| -> Vec<String> {
        list.trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(|v| v.trim().to_owned())
            .collect()
    };
    let mut requirements = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    requirements.push(&selector[start..]);
    requirements.into_iter().map(str::trim).all(|r| {
        if let Some(key) = r.strip_prefix('!') {
            label(key).is_none()
        } else if let Some((key, values)) = r.split_once(" notin ") {
            label(key).is_none_or(|v| !set(values).iter().any(|s| s == v))
        } else if let Some((key, values)) = r.split_once(" in ") {
            label(key).is_some_and(|v| set(values).iter().any(|s| s == v))
        } else if let Some((key, value)) = r.split_once("!=") {
            label(key) != Some(value.trim())
        } else if let Some((key, value)) = r.split_once("==").or_else(|| r.split_once('=')) {
            label(key) == Some(value.trim())
        } else {
            label(r).is_some()
        }
    })
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn client(url: &str) -> kube::Client {
    let config = kube::Config::new(url.parse().expect("a URL"));
    kube::Client::try_from(config).expect("a client")
}

async fn scan_with(
    url: &str,
    options: &KubernetesOptions,
) -> Result<KubernetesScan, KubernetesScanError> {
    let mut progress = |_: KubernetesProgress| {};
    kubernetes::scan_with(client(url), "test", url, options, &mut progress).await
}

fn workload<'a>(scan: &'a KubernetesScan, kind: WorkloadKind, name: &str) -> &'a Workload {
    scan.workloads
        .iter()
        .find(|w| w.kind == kind && w.name == name)
        .unwrap_or_else(|| panic!("no {kind:?} {name} in {:#?}", scan.workloads))
}

fn kubeconfig(dir: &Path, lab_url: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: http://127.0.0.1:9
- name: lab
  cluster:
    server: {lab_url}
contexts:
- name: prod
  context:
    cluster: prod
    user: prod-admin
- name: lab
  context:
    cluster: lab
    user: scanner
    namespace: default
current-context: prod
users:
- name: prod-admin
  user:
    token: prod-token
- name: scanner
  user:
    token: lab-token
preferences: {{}}
"
    );
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}

#[tokio::test]
async fn a_scan_through_a_kubeconfig_context_finds_kserve_seldon_and_pod_workloads_across_pages() {
    let (url, api) = spawn(FakeApiServer::new(Behaviour {
        bearer: Some("lab-token"),
        ..Behaviour::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = KubernetesOptions {
        kubeconfig: Some(kubeconfig(dir.path(), &url)),
        context: Some("lab".to_owned()),
        page_size: 2,
        timeout: Duration::from_secs(10),
        ..KubernetesOptions::default()
    };
    let mut events = Vec::new();
    let mut progress = |p: KubernetesProgress| events.push(p);
    let scan = kubernetes::scan(&options, &mut progress)
        .await
        .expect("the scan succeeds");

    assert_eq!(scan.cluster, "lab");
    assert_eq!(scan.server, url);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    let names: Vec<(WorkloadKind, &str, &str)> = scan
        .workloads
        .iter()
        .map(|w| (w.kind, w.namespace.as_str(), w.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (WorkloadKind::Kserve, "kserve-test", "sklearn-iris"),
            (WorkloadKind::Kserve, "retention", "churn-xgb"),
            (WorkloadKind::Kserve, "risk", "fraud-detector"),
            (WorkloadKind::Seldon, "risk", "fraud-mlflow/canary"),
            (WorkloadKind::Seldon, "risk", "fraud-mlflow/main"),
            (WorkloadKind::Seldon, "seldon", "iris-model/default"),
            (WorkloadKind::Pod, "genai", "llm-server-0"),
            (WorkloadKind::Pod, "risk", "fraud-scorer-6c8d7b9f5-q7w2n"),
            (WorkloadKind::Pod, "search", "text-embedder-7b9c5d7f4-lm3pq"),
            (WorkloadKind::Pod, "shop", "recommender-5d8f9c7b6-z9x8w"),
        ],
        "sorted by kind, namespace, name; the KServe and Seldon pods and nginx left out"
    );

    // KServe, the quickstart's service: new model form, Knative, ready.
    let iris = workload(&scan, WorkloadKind::Kserve, "sklearn-iris");
    assert_eq!(iris.model_format.as_deref(), Some("sklearn"));
    assert_eq!(
        iris.storage_uri.as_deref(),
        Some("gs://kfserving-examples/models/sklearn/1.0/model")
    );
    assert_eq!(
        iris.url.as_deref(),
        Some("http://sklearn-iris.kserve-test.knative.example.com")
    );
    assert!(iris.ready);
    assert_eq!(
        (iris.model_name.as_deref(), iris.digest.as_deref()),
        (None, None)
    );
    assert_eq!(
        iris.created_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2025-03-15T12:41:59+00:00")
    );
    assert!(iris.labels.is_empty());

    // KServe, a modelcar pinned by digest, with model-registry labels.
    let fraud = workload(&scan, WorkloadKind::Kserve, "fraud-detector");
    assert_eq!(fraud.model_name.as_deref(), Some("fraud"));
    assert_eq!(fraud.model_version.as_deref(), Some("3"));
    assert_eq!(fraud.model_format.as_deref(), Some("mlflow/2"));
    assert_eq!(fraud.runtime.as_deref(), Some("kserve-mlserver"));
    assert_eq!(
        fraud.digest.as_deref(),
        Some("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );
    assert_eq!(
        fraud.url.as_deref(),
        Some("http://fraud-detector-risk.example.com")
    );
    assert!(fraud.ready);
    assert_eq!(
        fraud
            .labels
            .get("modelregistry.kubeflow.org/registered-model-id")
            .map(String::as_str),
        Some("7")
    );
    assert!(!fraud.labels.contains_key("team"), "{:?}", fraud.labels);

    // KServe, the older per-framework form, not ready yet, digest from the annotation.
    let churn = workload(&scan, WorkloadKind::Kserve, "churn-xgb");
    assert_eq!(churn.model_format.as_deref(), Some("xgboost"));
    assert_eq!(
        churn.storage_uri.as_deref(),
        Some("s3://ml-models/churn/xgb/v7")
    );
    assert_eq!(churn.model_name.as_deref(), Some("churn"));
    assert_eq!(
        churn.digest.as_deref(),
        Some("sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
    );
    assert!(!churn.ready);
    assert_eq!(churn.url, None);

    // Seldon: one workload per predictor, the model from the MLflow URI.
    let main = workload(&scan, WorkloadKind::Seldon, "fraud-mlflow/main");
    assert_eq!(
        (main.model_name.as_deref(), main.model_version.as_deref()),
        (Some("fraud"), None),
        "an alias is not a version"
    );
    assert_eq!(main.runtime.as_deref(), Some("MLFLOW_SERVER"));
    assert_eq!(main.model_format.as_deref(), Some("mlflow"));
    assert_eq!(main.storage_uri.as_deref(), Some("models:/fraud@champion"));
    assert_eq!(main.images, ["seldonio/mlflowserver:1.17.1"]);
    assert!(!main.ready, "the deployment is still Creating");
    let canary = workload(&scan, WorkloadKind::Seldon, "fraud-mlflow/canary");
    assert_eq!(
        (
            canary.model_name.as_deref(),
            canary.model_version.as_deref()
        ),
        (Some("fraud"), Some("4"))
    );
    let iris = workload(&scan, WorkloadKind::Seldon, "iris-model/default");
    assert!(iris.ready);
    assert_eq!(iris.runtime.as_deref(), Some("SKLEARN_SERVER"));
    assert_eq!(iris.model_format.as_deref(), Some("sklearn"));
    assert_eq!(iris.model_name.as_deref(), Some("classifier"));
    assert_eq!(
        iris.url.as_deref(),
        Some("http://iris-model-default.seldon.svc.cluster.local:8000/api/v1.0/predictions")
    );

    // Pods: the MLflow URI outranks the app labels; the registry's names outrank both.
    let scorer = workload(&scan, WorkloadKind::Pod, "fraud-scorer-6c8d7b9f5-q7w2n");
    assert_eq!(
        (
            scorer.model_name.as_deref(),
            scorer.model_version.as_deref()
        ),
        (Some("fraud"), Some("3"))
    );
    assert_eq!(scorer.storage_uri.as_deref(), Some("models:/fraud/3"));
    assert_eq!(
        scorer.digest.as_deref(),
        Some("sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c")
    );
    assert_eq!(
        scorer.images,
        [
            "ghcr.io/acme/fraud-scorer:1.4.2",
            "envoyproxy/envoy:v1.31.2"
        ]
    );
    assert!(scorer.ready);
    let llm = workload(&scan, WorkloadKind::Pod, "llm-server-0");
    assert_eq!(
        (llm.model_name.as_deref(), llm.model_version.as_deref()),
        (Some("granite-7b-instruct"), Some("1.1"))
    );
    assert!(!llm.ready);
    let embedder = workload(&scan, WorkloadKind::Pod, "text-embedder-7b9c5d7f4-lm3pq");
    assert_eq!(
        (
            embedder.model_name.as_deref(),
            embedder.model_version.as_deref()
        ),
        (Some("bge-small-en"), Some("v1.5"))
    );
    assert_eq!(
        embedder.storage_uri.as_deref(),
        Some("hf://BAAI/bge-small-en-v1.5")
    );

    // Paging was followed: page 2 of each long listing asked with the token page 1 gave.
    let isvc = api.requests_to("inferenceservices");
    assert_eq!(isvc.len(), 2, "{isvc:#?}");
    assert!(isvc.iter().all(|r| r.limit == Some(2) && r.status == 200));
    assert_eq!(isvc[0].continue_token, None);
    assert!(isvc[1].continue_token.is_some());
    let pods = api.requests_to("pods");
    let component: Vec<&Logged> = pods
        .iter()
        .filter(|r| {
            r.label_selector
                .as_deref()
                .is_some_and(|s| s.starts_with("app.kubernetes.io/component in"))
        })
        .collect();
    assert_eq!(
        component.len(),
        2,
        "three model-server pods, two a page: {pods:#?}"
    );
    assert!(component[1].continue_token.is_some());
    assert_eq!(
        pods.len(),
        4,
        "three selectors, one of them two pages: {pods:#?}"
    );
    assert_eq!(api.requests_to("seldondeployments").len(), 1);
    assert!(
        api.log().iter().all(|r| r.status == 200),
        "{:#?}",
        api.log()
    );
    assert_eq!(scan.requests, 7);
    assert_eq!(events.len(), 7, "one progress event a page");
    assert_eq!(
        events.last(),
        Some(&KubernetesProgress {
            resource: "pods",
            items: 1,
            requests: 7
        })
    );
}

#[tokio::test]
async fn a_seldon_crd_that_is_not_installed_is_skipped_not_a_failure() {
    let (url, api) = spawn(FakeApiServer::new(Behaviour {
        not_installed: vec!["seldondeployments"],
        ..Behaviour::default()
    }))
    .await;
    let scan = scan_with(&url, &KubernetesOptions::default())
        .await
        .expect("the scan succeeds");
    assert_eq!(
        scan.skipped,
        ["seldondeployments.machinelearning.seldon.io is not installed"]
    );
    assert!(
        scan.workloads
            .iter()
            .all(|w| w.kind != WorkloadKind::Seldon)
    );
    assert_eq!(
        scan.workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Kserve)
            .count(),
        3
    );
    let seldon = api.requests_to("seldondeployments");
    assert_eq!(seldon.len(), 1);
    assert_eq!(seldon[0].status, 404);
}

#[tokio::test]
async fn forbidden_pods_fail_the_scan_naming_the_rbac_permission() {
    let (url, _api) = spawn(FakeApiServer::new(Behaviour {
        forbidden: vec!["pods"],
        ..Behaviour::default()
    }))
    .await;
    let error = scan_with(&url, &KubernetesOptions::default())
        .await
        .expect_err("the scan fails");
    let KubernetesScanError::Forbidden {
        resource, status, ..
    } = &error
    else {
        panic!("not Forbidden: {error:?}");
    };
    assert_eq!((resource.as_str(), *status), ("pods", 403));
    let message = error.to_string();
    assert!(
        message.contains("the scan needs list on pods in all namespaces"),
        "{message}"
    );
    assert!(
        message.contains("kubectl auth can-i list pods --all-namespaces"),
        "{message}"
    );
    assert!(
        message.contains("cannot list resource \"pods\""),
        "{message}"
    );
}

#[tokio::test]
async fn rejected_credentials_say_to_log_in_again() {
    let (url, api) = spawn(FakeApiServer::new(Behaviour {
        bearer: Some("lab-token"),
        ..Behaviour::default()
    }))
    .await;
    let error = scan_with(&url, &KubernetesOptions::default())
        .await
        .expect_err("no token, no scan");
    assert!(
        matches!(error, KubernetesScanError::Forbidden { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("log in again"), "{error}");
    assert_eq!(api.log().len(), 1, "the first refusal ends the scan");
}

#[tokio::test]
async fn nothing_listening_is_unreachable_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    let options = KubernetesOptions {
        timeout: Duration::from_secs(2),
        ..KubernetesOptions::default()
    };
    let started = Instant::now();
    let error = scan_with(&url, &options).await.expect_err("nothing there");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let KubernetesScanError::Unreachable { server, message } = &error else {
        panic!("not Unreachable: {error:?}");
    };
    assert_eq!(server, &url);
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_unreachable_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    // Accepts connections and holds them, answering nothing.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let options = KubernetesOptions {
        timeout: Duration::from_millis(300),
        ..KubernetesOptions::default()
    };
    let started = Instant::now();
    let error = scan_with(&url, &options).await.expect_err("no answer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&error, KubernetesScanError::Unreachable { message, .. } if message.contains("no answer")),
        "{error:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn an_expired_continue_token_falls_back_to_one_unpaged_list() {
    let (url, api) = spawn(FakeApiServer::new(Behaviour {
        expire_continue_tokens: true,
        ..Behaviour::default()
    }))
    .await;
    let options = KubernetesOptions {
        page_size: 2,
        ..KubernetesOptions::default()
    };
    let scan = scan_with(&url, &options).await.expect("the scan succeeds");
    let isvc = api.requests_to("inferenceservices");
    let asked: Vec<(Option<usize>, bool, u16)> = isvc
        .iter()
        .map(|r| (r.limit, r.continue_token.is_some(), r.status))
        .collect();
    assert_eq!(
        asked,
        [
            (Some(2), false, 200),
            (Some(2), true, 410),
            (None, false, 200)
        ]
    );
    let kserve: Vec<&str> = scan
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Kserve)
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(
        kserve,
        ["sklearn-iris", "churn-xgb", "fraud-detector"],
        "each once"
    );
    assert_eq!(
        scan.workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Pod)
            .count(),
        4
    );
}

#[tokio::test]
async fn one_namespace_is_listed_through_its_namespaced_paths() {
    let (url, api) = spawn(FakeApiServer::new(Behaviour::default())).await;
    let options = KubernetesOptions {
        namespace: Some("risk".to_owned()),
        ..KubernetesOptions::default()
    };
    let scan = scan_with(&url, &options).await.expect("the scan succeeds");
    let names: Vec<&str> = scan.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "fraud-detector",
            "fraud-mlflow/canary",
            "fraud-mlflow/main",
            "fraud-scorer-6c8d7b9f5-q7w2n"
        ]
    );
    let paths: BTreeMap<String, usize> =
        api.log().into_iter().fold(BTreeMap::new(), |mut paths, r| {
            *paths.entry(r.path).or_default() += 1;
            paths
        });
    assert_eq!(
        paths,
        BTreeMap::from([
            (format!("{CORE_PATH}/namespaces/risk/pods"), 3),
            (
                format!("{KSERVE_PATH}/namespaces/risk/inferenceservices"),
                1
            ),
            (
                format!("{SELDON_PATH}/namespaces/risk/seldondeployments"),
                1
            ),
        ])
    );
}

#[tokio::test]
async fn an_unknown_context_is_a_configuration_error_that_lists_the_contexts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = KubernetesOptions {
        kubeconfig: Some(kubeconfig(dir.path(), "http://127.0.0.1:9")),
        context: Some("staging".to_owned()),
        ..KubernetesOptions::default()
    };
    let mut progress = |_: KubernetesProgress| {};
    let error = kubernetes::scan(&options, &mut progress)
        .await
        .expect_err("no such context");
    assert!(
        matches!(error, KubernetesScanError::Config { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("context staging"), "{message}");
    assert!(message.contains("prod, lab"), "{message}");
}

#[test]
fn the_fake_servers_label_selectors_and_tokens_work_like_the_api_servers() {
    let labels = json!({"app.kubernetes.io/component": "model", "team": "shop"});
    assert!(selects(
        "app.kubernetes.io/component in (model-server,model),!seldon-deployment-id",
        &labels
    ));
    assert!(!selects(
        "app.kubernetes.io/component in (model-server,inference)",
        &labels
    ));
    assert!(!selects("team,!app.kubernetes.io/component", &labels));
    assert!(selects(
        "team=shop,team!=risk,app.kubernetes.io/component notin (predictor)",
        &labels
    ));
    assert_eq!(base64(b"{\"v\":1}"), "eyJ2IjoxfQ==");
    assert_eq!(base64(b"ab"), "YWI=");
}
