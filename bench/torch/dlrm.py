"""The PyTorch eager baseline of the benchmarks: a recshard model artifact (docs/model-format.md) as the
nn.Module a PyTorch user would write (nn.EmbeddingBag per table, nn.Linear layers from the ONNX Gemms, DLRM's
bmm dot interaction), served over recshard's binary predict protocol (contracts/wire/predict.ts), plus a
pooled-lookup microbenchmark of torch's embedding_bag.

  python dlrm.py serve --model-dir DIR --model NAME --port P [--host H] [--threads 1] [--exit-with-stdin]
  python dlrm.py kernel --table FILE --rows R --dim D --indices FILE --offsets FILE --seconds S
  python dlrm.py versions
"""

import argparse
import http.server
import json
import os
import platform
import socketserver
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PREDICT_MAGIC = 0x31505352  # "RSP1"
PREDICT_CONTENT_TYPE = "application/x-recshard-predict"
MAX_BODY_BYTES = 256 << 20

# The wire format is little-endian; the zero-copy views below read it in native order.
assert sys.byteorder == "little", "the recshard wire format is read as native little-endian words"


class BadRequest(Exception):
    pass


# --- the model ---------------------------------------------------------------------------------------------


def load_mlp(path: str) -> nn.Sequential:
    """An ONNX MLP as written by models/onnx.ts: a chain of Gemm, Relu and Sigmoid nodes, nothing else."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    layers: list[nn.Module] = []
    current = graph.input[0].name
    for node in graph.node:
        if node.op_type not in ("Gemm", "Relu", "Sigmoid"):
            raise ValueError(f"{path}: unsupported ONNX op {node.op_type} (expected Gemm, Relu, Sigmoid)")
        if node.input[0] != current:
            raise ValueError(f"{path}: node {node.name or node.op_type} does not continue the chain from {current}")
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0):
                raise ValueError(f"{path}: Gemm with transA is not an MLP layer")
            w = inits[node.input[1]].astype(np.float32)
            # Gemm is x @ B (B: in x out) or, with transB, x @ B^T (B: out x in, nn.Linear's own layout)
            weight = w if attrs.get("transB", 0) else w.T
            out_f, in_f = weight.shape
            bias = inits[node.input[2]].astype(np.float32).reshape(-1) if len(node.input) > 2 and node.input[2] else np.zeros(out_f, np.float32)
            if bias.size == 1 and out_f > 1:
                bias = np.full(out_f, bias[0], np.float32)
            if bias.size != out_f:
                raise ValueError(f"{path}: Gemm bias of {bias.size} values for {out_f} outputs")
            lin = nn.Linear(in_f, out_f)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)) * float(attrs.get("alpha", 1.0)))
                lin.bias.copy_(torch.from_numpy(bias) * float(attrs.get("beta", 1.0)))
            layers.append(lin)
        else:
            layers.append(nn.ReLU() if node.op_type == "Relu" else nn.Sigmoid())
        current = node.output[0]
    if current != graph.output[0].name:
        raise ValueError(f"{path}: the chain ends at {current}, not at the graph output {graph.output[0].name}")
    return nn.Sequential(*layers)


def load_table(model_dir: str, t: dict) -> torch.Tensor:
    """One table's rows as fp32: its file, or its chunk files in order (docs/model-format.md); int8 rows dequantised."""
    rows, dim = t["rows"], t["dim"]
    files = [c["file"] for c in t["chunks"]] if "chunks" in t else [t["file"]]
    raw = np.concatenate([np.fromfile(os.path.join(model_dir, f), dtype=np.uint8) for f in files])
    if t["dtype"] == "int8":
        # per row: dim bytes (padded to a multiple of 4), then fp32 scale and fp32 bias; v = fp32(fp32(q * scale) + bias)
        stride = (dim + 3) // 4 * 4
        packed = raw.reshape(rows, stride + 8)
        scale = packed[:, stride : stride + 4].copy().view(np.float32)
        bias = packed[:, stride + 4 :].copy().view(np.float32)
        values = packed[:, :dim].astype(np.float32) * scale + bias
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    data = raw.view({"fp32": np.float32, "fp16": np.float16}[t["dtype"]])
    if data.size != rows * dim:
        raise ValueError(f"{t['name']}: {data.size} values, the manifest says {rows} x {dim}")
    # fp16 tables are upcast once, as recshard's kernel upcasts each element it reads
    return torch.from_numpy(data.reshape(rows, dim).astype(np.float32, copy=False))


class DLRM(nn.Module):
    """bottom MLP (or dense passthrough) -> pooled embeddings -> concat or dot interaction -> top MLP."""

    def __init__(self, model_dir: str):
        super().__init__()
        with open(os.path.join(model_dir, "manifest.json")) as f:
            m = json.load(f)
        self.manifest = m
        self.dense_features: int = m["denseFeatures"]
        self.interaction: str = m["interaction"]
        self.rows = [t["rows"] for t in m["tables"]]
        self.dims = [t["dim"] for t in m["tables"]]
        self.bags = nn.ModuleList(
            nn.EmbeddingBag.from_pretrained(load_table(model_dir, t), freeze=True, mode="sum")
            for t in m["tables"]
        )
        bottom = m["dense"].get("bottom")
        self.bottom = load_mlp(os.path.join(model_dir, bottom["file"])) if bottom else None
        self.top = load_mlp(os.path.join(model_dir, m["dense"]["top"]["file"]))
        self.bottom_out: int = m["bottomMLP"][-1] if m["bottomMLP"] else self.dense_features
        if self.interaction == "dot":
            if any(d != self.bottom_out for d in self.dims):
                raise ValueError(f"dot interaction needs every table dim to equal the bottom width {self.bottom_out}")
            # DLRM's reference: the strictly lower triangle of the Gram matrix of [bottom, pooled_0, ...], row by row
            n = len(self.dims) + 1
            li, lj = torch.tril_indices(n, n, offset=-1)
            self.register_buffer("li", li, persistent=False)
            self.register_buffer("lj", lj, persistent=False)
        elif self.interaction != "concat":
            raise ValueError(f"unknown interaction {self.interaction}")
        self.outputs: int = m["topMLP"][-1]

    def forward(self, dense: torch.Tensor, lookups: dict[int, tuple[torch.Tensor, torch.Tensor]], mode: str) -> torch.Tensor:
        batch = dense.shape[0]
        x = self.bottom(dense) if self.bottom is not None else dense
        pooled = []
        for t, bag in enumerate(self.bags):
            lk = lookups.get(t)
            if lk is None:  # a table the request does not mention pools to zeros
                pooled.append(x.new_zeros(batch, self.dims[t]))
            else:
                pooled.append(F.embedding_bag(lk[0], bag.weight, lk[1], mode=mode, include_last_offset=True))
        if self.interaction == "concat":
            z = torch.cat([x, *pooled], dim=1)
        else:
            t = torch.stack([x, *pooled], dim=1)  # batch x n x d
            gram = torch.bmm(t, t.transpose(1, 2))
            z = torch.cat([x, gram[:, self.li, self.lj]], dim=1)
        return self.top(z)


# --- the binary predict protocol ----------------------------------------------------------------------------


def decode_predict(body: bytearray, model: DLRM):
    """The request as zero-copy views of the body: dense, {table: (indices, offsets)} as int32 tensors, mode."""
    if len(body) % 4:
        raise BadRequest(f"body length {len(body)} is not a multiple of 4")
    u = np.frombuffer(body, dtype=np.uint32)
    if u.size < 5 or u[0] != PREDICT_MAGIC:
        raise BadRequest("not a recshard predict request (bad magic)")
    batch, features, pooling = int(u[1]), int(u[2]), int(u[3])
    if batch < 1:
        raise BadRequest("batch must be at least 1")
    if features != model.dense_features:
        raise BadRequest(f"denseFeatures is {features}; the model takes {model.dense_features}")
    if pooling > 1:
        raise BadRequest(f"pooling must be 0 (sum) or 1 (mean), got {pooling}")
    n_dense = batch * features
    if 4 + n_dense + 1 > u.size:
        raise BadRequest("truncated in dense features")
    dense = np.frombuffer(body, dtype=np.float32, count=n_dense, offset=16).reshape(batch, features)
    if not np.isfinite(dense).all():
        raise BadRequest("dense features must be finite numbers")
    p = 4 + n_dense
    n_tables = int(u[p])
    p += 1
    lookups: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for s in range(n_tables):
        if p + 2 > u.size:
            raise BadRequest(f"truncated at table {s}")
        table, n_idx = int(u[p]), int(u[p + 1])
        p += 2
        if p + batch + 1 + n_idx > u.size:
            raise BadRequest(f"truncated in table {s}")
        offsets = u[p : p + batch + 1]
        p += batch + 1
        indices = u[p : p + n_idx]
        p += n_idx
        if table >= len(model.rows):
            raise BadRequest(f"tables[{s}]: the model has no table index {table}")
        if table in lookups:
            raise BadRequest(f"tables[{s}]: table index {table} appears twice")
        if offsets[0] != 0 or offsets[batch] != n_idx:
            raise BadRequest(f"tables[{s}].offsets must start at 0 and end at {n_idx}")
        if (offsets[1:] < offsets[:-1]).any():
            raise BadRequest(f"tables[{s}].offsets must not decrease")
        if n_idx and int(indices.max()) >= model.rows[table]:
            raise BadRequest(f"tables[{s}]: an index is out of range: the table has {model.rows[table]} rows")
        # every value is now below 2^31, so the words read as int32 (which embedding_bag takes) without a copy
        lookups[table] = (torch.from_numpy(indices.view(np.int32)), torch.from_numpy(offsets.view(np.int32)))
    if p != u.size:
        raise BadRequest(f"{u.size - p} trailing words")
    return torch.from_numpy(dense), lookups, "mean" if pooling == 1 else "sum"


def encode_scores(scores: torch.Tensor) -> bytes:
    batch, outputs = scores.shape
    return np.array([PREDICT_MAGIC, batch, outputs], dtype=np.uint32).tobytes() + scores.contiguous().numpy().astype(np.float32, copy=False).tobytes()


def make_handler(model: DLRM, name: str):
    predict_path = f"/v1/models/{name}:predict"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length
        disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY on each accepted socket

        def reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            # header and body in one write, so that with TCP_NODELAY a reply is not split into two segments
            head = f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            if self.close_connection:
                head += "Connection: close\r\n"
            self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

        def read_body(self) -> bytearray | None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self.close_connection = True  # the body's end is unknown: the connection cannot be reused
                self.reply(411 if length is None else 413, b"a Content-Length of at most 256 MiB is required\n")
                return None
            body = bytearray(int(length))  # writable, so torch.from_numpy views it without a warning or a copy
            view, got = memoryview(body), 0
            while got < len(body):
                k = self.rfile.readinto(view[got:])
                if not k:
                    raise ConnectionError("client closed mid-body")
                got += k
            return body

        def do_GET(self) -> None:
            if self.path in ("/healthz", "/readyz"):
                self.reply(200, b"ok\n")
            else:
                self.reply(404, f"no route GET {self.path}\n".encode())

        def do_POST(self) -> None:
            try:
                body = self.read_body()  # read first, whatever the answer, so the next request on the connection parses
            except ConnectionError:
                self.close_connection = True
                return
            if body is None:
                return
            if self.path != predict_path:
                return self.reply(404, f"no route POST {self.path} (this server serves {predict_path})\n".encode())
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != PREDICT_CONTENT_TYPE:
                return self.reply(415, f"content-type must be {PREDICT_CONTENT_TYPE}, got {ctype or 'none'}\n".encode())
            try:
                dense, lookups, mode = decode_predict(body, model)
                with torch.inference_mode():  # thread-local: entered on each handler thread
                    scores = model(dense, lookups, mode)
                self.reply(200, encode_scores(scores), PREDICT_CONTENT_TYPE)
            except BadRequest as e:
                self.reply(400, f"{e}\n".encode())
            except Exception as e:  # a bug or torch's own refusal: answered, logged, and the server goes on
                print(f"predict failed: {e!r}", file=sys.stderr, flush=True)
                self.reply(400, f"predict failed: {e}\n".encode())

        def log_message(self, format: str, *args) -> None:
            pass  # no line per request: the benchmark measures serving, not logging

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: open-loop load opens many connections at once

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall on an offline machine
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def serve(a: argparse.Namespace) -> None:
    torch.set_num_threads(a.threads)
    model = DLRM(a.model_dir).eval()
    server = Server((a.host, a.port), make_handler(model, a.model))
    if a.exit_with_stdin:
        # the parent holds our stdin: when it goes, however it goes, so do we
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


# --- the kernel microbenchmark and versions ------------------------------------------------------------------


def kernel(a: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    table = np.fromfile(a.table, dtype=np.float32, count=a.rows * a.dim)
    if table.size != a.rows * a.dim:
        sys.exit(f"{a.table}: {table.size} floats, expected {a.rows} x {a.dim}")
    weight = torch.from_numpy(table.reshape(a.rows, a.dim))
    idx = np.fromfile(a.indices, dtype=np.uint32)
    off = np.fromfile(a.offsets, dtype=np.uint32)
    if off.size < 2 or off[0] != 0 or off[-1] != idx.size or (off[1:] < off[:-1]).any():
        sys.exit(f"{a.offsets}: offsets must run from 0 to {idx.size} without decreasing")
    if idx.size and int(idx.max()) >= a.rows:
        sys.exit(f"{a.indices}: an index is out of range of {a.rows} rows")
    # int64, as a PyTorch user passes indices; converted once, outside the timing
    indices = torch.from_numpy(idx.astype(np.int64))
    offsets = torch.from_numpy(off.astype(np.int64))
    with torch.inference_mode():
        F.embedding_bag(indices, weight, offsets, mode="sum", include_last_offset=True)  # warm-up
        calls = 0
        t0 = t = time.perf_counter()
        while t - t0 < a.seconds:
            F.embedding_bag(indices, weight, offsets, mode="sum", include_last_offset=True)
            calls += 1
            t = time.perf_counter()
    print(json.dumps({"lookupsPerSecond": calls * idx.size / (t - t0), "calls": calls, "torch": torch.__version__}), flush=True)


def versions(_: argparse.Namespace) -> None:
    import onnx

    print(json.dumps({"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "onnx": onnx.__version__}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a model directory over the binary predict protocol")
    s.add_argument("--model-dir", required=True)
    s.add_argument("--model", required=True, help="the NAME of /v1/models/NAME:predict")
    s.add_argument("--port", type=int, required=True, help="0 picks a free port (printed as 'listening PORT')")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    s.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin closes (the parent is gone)")
    s.set_defaults(run=serve)
    k = sub.add_parser("kernel", help="pooled-lookup microbenchmark of embedding_bag (sum, one thread)")
    k.add_argument("--table", required=True)
    k.add_argument("--rows", type=int, required=True)
    k.add_argument("--dim", type=int, required=True)
    k.add_argument("--indices", required=True)
    k.add_argument("--offsets", required=True, help="uint32, batch + 1 entries")
    k.add_argument("--seconds", type=float, required=True)
    k.set_defaults(run=kernel)
    sub.add_parser("versions", help="python, torch, numpy and onnx versions as JSON").set_defaults(run=versions)
    a = p.parse_args()
    a.run(a)


if __name__ == "__main__":
    main()
