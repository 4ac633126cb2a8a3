"""The word count of word_count_job.py through `env.execute_async()`, which under `flink run` submits to the
cluster and follows the job there: `flink run -py async_word_count_job.py <out-folder> <copies>`."""

import sys

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.testing.sinks import CollectSink
from integration.word_count_job import input_lines

if __name__ == "__main__":
    out, copies = sys.argv[1], int(sys.argv[2])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (env.from_collection(input_lines(copies))
        .flat_map(lambda line: line.split())
        .map(lambda w: (w, 1))
        .key_by(lambda t: t[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(out)))
    client = env.execute_async("async word count")
    print(f"client of {client.get_job_id()}: local mini cluster {client.mini_cluster is not None}", flush=True)
    result = client.get_job_execution_result().result(120)
    print(f"result of {result.get_job_id()}: {client.get_job_status().result(30)}", flush=True)
