//! Query latency, warm: p50/p99 for keyword, vector and hybrid search over the evaluation corpus
//! (the eval queries, each run once to warm up and then measured), and RSS while serving.
//!
//! With a Qdrant binary or server at hand (`QDRANT_URL`, `AIEX_QDRANT_BIN`, or
//! `shared/qdrant/qdrant` next to the clone), the same collection is copied (`index --push`, no
//! re-embedding) into one Qdrant node and into a 3-node cluster (3 shards, 2 replicas), and the
//! same queries are measured in server mode, where Qdrant answers every mode. The push's write
//! rate is printed beside the raw client's bulk upsert of the same points (read back from the
//! server) into a scratch collection of the same layout and payload indexes.
//!
//! `cargo bench -p aiex-benches --bench query` (needs the index built by the retrieval benchmark,
//! or builds it).

use std::path::Path;
use std::time::Instant;

use aiex_benches::{codesearch_dir, ensure_indexed, eval_queries, percentile, rss_mib};
use aiex_config::SearchMode;
use aiex_indexer::{SearchRequest, Searcher};
use aiex_tests::qdrant::{QdrantCluster, TestQdrant};

const NAME: &str = "codesearch-docs";

fn main() {
    println!(
        "query latency benchmark; machine: {}",
        aiex_benches::machine()
    );
    let corpus = codesearch_dir();
    let data_dir = aiex_benches::cache_dir().join("data-docs");
    let summary = ensure_indexed(&data_dir, &corpus.join("corpus-docs"), NAME);
    let config = aiex_benches::config(&data_dir);
    let queries: Vec<String> = eval_queries().into_iter().map(|q| q.query).collect();
    println!(
        "corpus-docs: {} chunks, {} queries",
        summary.chunks,
        queries.len()
    );
    println!("embedded (tantivy + qdrant-edge, in process):");
    let searcher = Searcher::open(&config, &[]).expect("open");
    measure(&searcher, &queries);
    println!("  RSS while serving: {:.0} MiB", rss_mib());
    drop(searcher);

    if let Some(qdrant) = TestQdrant::get("the query benchmark's server mode") {
        println!("one Qdrant node ({}), loopback gRPC:", qdrant.url());
        server_mode(&data_dir, qdrant.url(), &[], &queries);
    }
    if let Some(cluster) = QdrantCluster::start(3) {
        println!(
            "3-node Qdrant cluster ({}), 3 shards x 2 replicas, loopback gRPC:",
            cluster.url()
        );
        server_mode(
            &data_dir,
            cluster.url(),
            &[
                ("vector.shard_number", "3"),
                ("vector.replication_factor", "2"),
            ],
            &queries,
        );
    }
}

/// Copies the embedded collection of `data_dir` into the Qdrant at `url` and measures the
/// queries from a node with an empty data directory.
fn server_mode(data_dir: &Path, url: &str, layout: &[(&str, &str)], queries: &[String]) {
    let mut push = vec![("vector.url", url)];
    push.extend_from_slice(layout);
    let pushed = aiex_indexer::push::push_collection(
        &aiex_tests::config(data_dir, &push),
        NAME,
        &mut |_, _| {},
    )
    .expect("push the collection");
    println!(
        "  pushed {} points in {:.1} s ({:.0} points/s, no embedding)",
        pushed.points,
        pushed.took_ms as f64 / 1000.0,
        pushed.points as f64 / (pushed.took_ms.max(1) as f64 / 1000.0)
    );
    println!(
        "    of which writing the points {:.1} s ({:.0} points/s), the files {:.1} s",
        pushed.upsert_ms as f64 / 1000.0,
        pushed.points as f64 / (pushed.upsert_ms.max(1) as f64 / 1000.0),
        pushed.files_ms as f64 / 1000.0
    );
    let (points, seconds) = raw_upsert(url, &pushed.qdrant_collection);
    println!(
        "  raw client bulk upsert of the same {points} points (batches of {}, wait): {seconds:.1} s \
         ({:.0} points/s)",
        aiex_indexer::store::server::UPSERT_BATCH,
        points as f64 / seconds.max(1e-9)
    );
    let node = tempfile::tempdir().expect("tempdir");
    let mut settings = vec![("vector.backend", "server"), ("vector.url", url)];
    settings.extend_from_slice(layout);
    let config = aiex_tests::config(node.path(), &settings);
    let searcher = Searcher::open(&config, &[NAME.to_string()]).expect("open in server mode");
    measure(&searcher, queries);
}

/// p50, p99 and max per mode, after one warm-up pass.
fn measure(searcher: &Searcher, queries: &[String]) {
    for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
        let run = |query: &str| {
            let started = Instant::now();
            searcher
                .search(&SearchRequest::new(query, mode, 10))
                .expect("search");
            started.elapsed().as_secs_f64() * 1000.0
        };
        for query in queries {
            run(query);
        }
        let latencies: Vec<f64> = queries.iter().map(|query| run(query)).collect();
        println!(
            "  {:<7} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            mode.to_string(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0)
        );
    }
}

/// Reads back the tenant's points from `source` and times upserting them with the bare client
/// into a scratch collection of the same layout and payload indexes, in batches of the store's
/// size, each waited for (as the store writes). Returns the points and the seconds taken.
fn raw_upsert(url: &str, source: &str) -> (usize, f64) {
    use qdrant_client::qdrant::{
        vector_output, Condition, CreateCollection, CreateFieldIndexCollection, FieldType, Filter,
        NamedVectors, PayloadSchemaType, PointStruct, ScrollPointsBuilder, UpsertPointsBuilder,
        Vector,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = qdrant_client::Qdrant::from_url(url)
            .skip_compatibility_check()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .expect("client");
        let info = client
            .collection_info(source)
            .await
            .expect("collection info")
            .result
            .expect("info");
        let config = info.config.expect("config");
        let params = config.params.expect("params");
        let mut points = Vec::new();
        let mut offset = None;
        loop {
            let mut request = ScrollPointsBuilder::new(source)
                .filter(Filter::must([Condition::matches(
                    aiex_indexer::store::server::TENANT_FIELD,
                    NAME.to_string(),
                )]))
                .limit(1024)
                .with_payload(true)
                .with_vectors(true);
            if let Some(from) = offset.take() {
                request = request.offset(from);
            }
            let page = client.scroll(request).await.expect("scroll");
            points.extend(page.result);
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        let structs: Vec<PointStruct> = points
            .into_iter()
            .map(|point| {
                let mut vectors = NamedVectors::default();
                if let Some(output) = &point.vectors {
                    for name in [aiex_indexer::store::vector::DENSE_VECTOR, "bm25"] {
                        let vector = match output.get_vector_by_name(name) {
                            Some(vector_output::Vector::Dense(dense)) => {
                                Vector::new_dense(dense.data)
                            }
                            Some(vector_output::Vector::Sparse(sparse)) => {
                                Vector::new_sparse(sparse.indices, sparse.values)
                            }
                            _ => continue,
                        };
                        vectors = vectors.add_vector(name, vector);
                    }
                }
                PointStruct::new(point.id.expect("id"), vectors, point.payload)
            })
            .collect();
        let scratch = "aiex_bench_raw_upsert";
        let _ = client.delete_collection(scratch).await;
        client
            .create_collection(CreateCollection {
                collection_name: scratch.to_string(),
                vectors_config: params.vectors_config,
                sparse_vectors_config: params.sparse_vectors_config,
                shard_number: Some(params.shard_number),
                replication_factor: params.replication_factor,
                write_consistency_factor: params.write_consistency_factor,
                payload: params.payload,
                hnsw_config: config.hnsw_config,
                ..CreateCollection::default()
            })
            .await
            .expect("create the scratch collection");
        for (field, schema) in info.payload_schema {
            // The schema's type enumeration is not the index request's: match them by name.
            let field_type = PayloadSchemaType::try_from(schema.data_type)
                .ok()
                .and_then(|kind| {
                    FieldType::from_str_name(&format!("FieldType{}", kind.as_str_name()))
                })
                .expect("a payload index type") as i32;
            client
                .create_field_index(CreateFieldIndexCollection {
                    collection_name: scratch.to_string(),
                    wait: Some(true),
                    field_name: field,
                    field_type: Some(field_type),
                    field_index_params: schema.params,
                    ..CreateFieldIndexCollection::default()
                })
                .await
                .expect("payload index");
        }
        let count = structs.len();
        let started = Instant::now();
        for batch in structs.chunks(aiex_indexer::store::server::UPSERT_BATCH) {
            client
                .upsert_points(UpsertPointsBuilder::new(scratch, batch.to_vec()).wait(true))
                .await
                .expect("upsert");
        }
        let seconds = started.elapsed().as_secs_f64();
        let _ = client.delete_collection(scratch).await;
        (count, seconds)
    })
}
