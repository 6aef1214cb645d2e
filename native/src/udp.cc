// UDP sockets Node's dgram cannot make, for the DNS proxy:
//  - a transparent listener that reports each datagram's ORIGINAL destination (IP_TRANSPARENT +
//    IP_RECVORIGDSTADDR; the datapath assigns redirected datagrams to it with bpf_sk_assign);
//  - a reply socket bound to an original destination (IP_TRANSPARENT lets it bind a non-local
//    address), so the client's answer comes from the server it asked;
//  - an upstream socket whose SO_MARK carries the source identity from its first datagram on,
//    connected to the server so the kernel drops datagrams from anyone else.
// Every socket is one handle; those with a callback are drained with recvmmsg in batches on a
// uv_poll of the JS thread's loop (as ringbuf.cc does), so the JS thread never blocks.
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <vector>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR 20
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

namespace membrane {

const napi_type_tag kUdpTag = {0x6d656d6272616e65ULL, 0x756470736f636b00ULL};

namespace {

// recvmmsg calls per wakeup: a flood cannot hold the loop for more than batch * kRounds datagrams.
constexpr unsigned kRounds = 4;
// The listener takes queries in batches of 32 and keeps 4096 bytes of each: a DNS query is far
// smaller, and a longer datagram is reported `truncated`, so the proxy counts it as malformed
// instead of parsing a prefix. An upstream socket expects one answer of any size UDP can carry.
constexpr unsigned kListenBatch = 32;
constexpr size_t kListenDatagram = 4096;
constexpr int kListenReceiveBuffer = 4 << 20;
// An upstream socket is shared by every query of one client socket to one server (upstream-shared.ts):
// a client's burst comes back on it. The default (rmem_default, ~208 KiB, ~200 answers) overflows
// while the worker is busy; 2 MiB holds a few thousand, and is only a limit, not memory taken.
constexpr int kUpstreamReceiveBuffer = 2 << 20;
constexpr unsigned kUpstreamBatch = 2;
constexpr size_t kUpstreamDatagram = 65536;

// Lifetime: the handle is freed once BOTH the JS External was collected and libuv has closed the
// poll (or there was none), so a udpSend or udpClose on a closed handle never touches freed memory.
struct UdpHandle {
  uv_poll_t poll;
  int fd = -1;
  bool polling = false;
  bool closed = false;
  bool uvClosed = false;
  bool externalGone = false;
  // Registered with napi_add_env_cleanup_hook until the handle is freed: a worker thread that
  // ends (or is terminated) closes its sockets before its loop and env go.
  bool cleanupHook = false;
  // The socket's own address: the destination of datagrams without IP_ORIGDSTADDR.
  sockaddr_in local{};
  Napi::FunctionReference callback;
  Napi::AsyncContext *context = nullptr;
  napi_env env = nullptr;
  unsigned batch = 0;
  size_t datagramMax = 0;
  // Uninitialised on purpose: only the msg_len bytes the kernel wrote are ever read.
  std::unique_ptr<uint8_t[]> buffers;
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iovs;
  std::vector<sockaddr_in> peers;
  std::vector<std::vector<uint8_t>> controls;
};

std::string AddrString(const sockaddr_in &a) {
  char ip[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
  return ip;
}

bool ParseAddr(Napi::Env env, const std::string &ip, int64_t port, sockaddr_in *out) {
  if (port < 0 || port > 65535) {
    ThrowTypeError(env, "port out of range: " + std::to_string(port));
    return false;
  }
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &out->sin_addr) != 1) {
    ThrowTypeError(env, "not an IPv4 address: " + ip);
    return false;
  }
  return true;
}

std::string Subject(const sockaddr_in &a) { return AddrString(a) + ":" + std::to_string(ntohs(a.sin_port)); }

void PrepareBatch(UdpHandle *h, unsigned batch, size_t datagramMax) {
  h->batch = batch;
  h->datagramMax = datagramMax;
  h->buffers.reset(new uint8_t[batch * datagramMax]);
  h->msgs.assign(batch, mmsghdr{});
  h->iovs.assign(batch, iovec{});
  h->peers.assign(batch, sockaddr_in{});
  h->controls.assign(batch, std::vector<uint8_t>(CMSG_SPACE(sizeof(sockaddr_in)) + CMSG_SPACE(sizeof(uint32_t)), 0));
}

void ResetBatch(UdpHandle *h) {
  for (unsigned i = 0; i < h->batch; i++) {
    h->iovs[i].iov_base = h->buffers.get() + i * h->datagramMax;
    h->iovs[i].iov_len = h->datagramMax;
    msghdr &m = h->msgs[i].msg_hdr;
    m = msghdr{};
    m.msg_name = &h->peers[i];
    m.msg_namelen = sizeof(sockaddr_in);
    m.msg_iov = &h->iovs[i];
    m.msg_iovlen = 1;
    m.msg_control = h->controls[i].data();
    m.msg_controllen = h->controls[i].size();
    h->msgs[i].msg_len = 0;
  }
}

// The original destination from the IP_ORIGDSTADDR control message, else the socket's address.
sockaddr_in OriginalDestination(UdpHandle *h, msghdr *m) {
  for (cmsghdr *c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR && c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in))) {
      sockaddr_in dst;
      std::memcpy(&dst, CMSG_DATA(c), sizeof dst);
      return dst;
    }
  }
  return h->local;
}

// The socket's count of datagrams the kernel dropped so far (SO_RXQ_OVFL, sk_drops), or -1
// when the control message is absent (the count is sent only once it is non-zero).
int64_t DropCount(msghdr *m) {
  for (cmsghdr *c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      uint32_t drops;
      std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
      return drops;
    }
  }
  return -1;
}

// SO_RCVBUFFORCE lifts net.core.rmem_max (root / CAP_NET_ADMIN); without it the kernel caps
// SO_RCVBUF at rmem_max, which is still no worse than the default.
void SetReceiveBuffer(int fd, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes)) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

Napi::Object Record(Napi::Env env, UdpHandle *h, unsigned i) {
  msghdr *m = &h->msgs[i].msg_hdr;
  size_t len = h->msgs[i].msg_len;
  bool truncated = (m->msg_flags & MSG_TRUNC) != 0;
  if (len > h->datagramMax) len = h->datagramMax;
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, h->buffers.get() + i * h->datagramMax, len);
  sockaddr_in dst = OriginalDestination(h, m);
  Napi::Object rec = Napi::Object::New(env);
  rec.Set("data", data);
  rec.Set("srcIp", AddrString(h->peers[i]));
  rec.Set("srcPort", Napi::Number::New(env, ntohs(h->peers[i].sin_port)));
  rec.Set("dstIp", AddrString(dst));
  rec.Set("dstPort", Napi::Number::New(env, ntohs(dst.sin_port)));
  rec.Set("truncated", Napi::Boolean::New(env, truncated));
  int64_t drops = DropCount(m);
  if (drops >= 0) rec.Set("drops", Napi::Number::New(env, static_cast<double>(drops)));
  return rec;
}

void Drain(UdpHandle *h);

void OnReadable(uv_poll_t *poll, int status, int events) {
  auto *h = static_cast<UdpHandle *>(poll->data);
  if (h->closed) return;
  Drain(h);
  // On POLLERR (a pending ICMP error on a connected socket) libuv stops the handle before calling
  // back; Drain has reported the error by reading it, and the socket keeps receiving.
  if (status < 0 && !h->closed) uv_poll_start(&h->poll, UV_READABLE, OnReadable);
}

void Drain(UdpHandle *h) {
  Napi::Env env(h->env);
  for (unsigned round = 0; round < kRounds && !h->closed; round++) {
    ResetBatch(h);
    int n = recvmmsg(h->fd, h->msgs.data(), h->batch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      // EAGAIN: drained. Any other error (e.g. ECONNREFUSED from an ICMP on a connected socket)
      // is reported to JS as an error record and the socket keeps serving.
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        int err = errno;
        Napi::HandleScope scope(env);
        Napi::Object rec = Napi::Object::New(env);
        rec.Set("errno", Napi::Number::New(env, err));
        rec.Set("error", Napi::String::New(env, std::strerror(err)));
        Napi::Array records = Napi::Array::New(env, 1);
        records.Set(0u, rec);
        h->callback.MakeCallback(env.Global(), {records}, *h->context);
        continue;
      }
      return;
    }
    Napi::HandleScope scope(env);
    Napi::Array records = Napi::Array::New(env, n);
    for (int i = 0; i < n; i++) records.Set(static_cast<uint32_t>(i), Record(env, h, static_cast<unsigned>(i)));
    h->callback.MakeCallback(env.Global(), {records}, *h->context);
    if (static_cast<unsigned>(n) < h->batch) return;
  }
}

void OnEnvCleanup(void *arg);

void FreeIfDone(UdpHandle *h) {
  if (!h->externalGone || (h->polling && !h->uvClosed)) return;
  if (h->cleanupHook) napi_remove_env_cleanup_hook(h->env, OnEnvCleanup, h);
  delete h->context;
  h->callback.Reset();
  delete h;
}

void OnClosed(uv_handle_t *uvh) {
  auto *h = static_cast<UdpHandle *>(uvh->data);
  h->uvClosed = true;
  FreeIfDone(h);
}

// Stops receiving and closes the fd now; the poll handle finishes closing on the loop.
void CloseHandle(UdpHandle *h) {
  if (h->closed) return;
  h->closed = true;
  if (h->polling) {
    uv_poll_stop(&h->poll);
    uv_close(reinterpret_cast<uv_handle_t *>(&h->poll), OnClosed);
  }
  // The callback and its async context stay until the handle is freed: udpClose may be called
  // from inside that very callback.
  close(h->fd);
}

// The env is going (its worker thread ends): close the socket and drop what refers to JS now,
// while the env can still take it; the poll handle finishes closing on the loop's last turns.
void OnEnvCleanup(void *arg) {
  auto *h = static_cast<UdpHandle *>(arg);
  h->cleanupHook = false;
  CloseHandle(h);
  delete h->context;
  h->context = nullptr;
  h->callback.Reset();
}

void OnExternalGone(Napi::Env env, UdpHandle *h) {
  CloseHandle(h);
  h->externalGone = true;
  FreeIfDone(h);
}

Napi::Value FailClosing(Napi::Env env, int fd, const char *step, const std::string &subject) {
  int err = errno;
  close(fd);
  ThrowSystemError(env, step, err, subject);
  return env.Null();
}

// Wraps an open socket in a handle; with a callback, starts draining it in batches of `batch`
// datagrams of at most `datagramMax` bytes. Closes fd on failure.
Napi::Value MakeHandle(Napi::Env env, int fd, const std::string &subject, Napi::Value callback, unsigned batch = 0,
                       size_t datagramMax = 0) {
  auto *h = new UdpHandle();
  h->fd = fd;
  socklen_t len = sizeof h->local;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&h->local), &len)) {
    delete h;
    return FailClosing(env, fd, "getsockname", subject);
  }
  h->env = env;
  if (callback.IsFunction()) {
    uv_loop_t *loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    int r = uv_poll_init(loop, &h->poll, fd);
    if (r) {
      close(fd);
      delete h;
      ThrowSystemError(env, "uv_poll_init", -r, subject);
      return env.Null();
    }
    h->poll.data = h;
    PrepareBatch(h, batch, datagramMax);
    h->callback = Napi::Persistent(callback.As<Napi::Function>());
    h->context = new Napi::AsyncContext(env, "membrane:udp");
    h->polling = true;
    uv_poll_start(&h->poll, UV_READABLE, OnReadable);
  }
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, h) == napi_ok) h->cleanupHook = true;
  auto external = Napi::External<UdpHandle>::New(env, h, OnExternalGone);
  external.TypeTag(&kUdpTag);
  return external;
}

UdpHandle *HandleArg(const Napi::CallbackInfo &info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal() || !info[i].As<Napi::Object>().CheckTypeTag(&kUdpTag)) {
    ThrowTypeError(info.Env(), "expected a UDP socket handle");
    return nullptr;
  }
  return info[i].As<Napi::External<UdpHandle>>().Data();
}

int OpenUdp(Napi::Env env, const std::string &subject) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSystemError(env, "socket", errno, subject);
  return fd;
}

// udpListenTransparent(ip, port, callback(records), reusePort = false) -> handle. Each record:
// {data, srcIp, srcPort, dstIp, dstPort (the original destination), truncated}, or {errno, error}.
// With reusePort the listener joins the SO_REUSEPORT group on ip:port (as tcpListenTransparent).
Napi::Value UdpListenTransparent(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port;
  sockaddr_in addr;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port") || !ParseAddr(env, ip, port, &addr)) return env.Null();
  if (info.Length() < 3 || !info[2].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return env.Null();
  }
  std::string subject = Subject(addr);
  int fd = OpenUdp(env, subject);
  if (fd < 0) return env.Null();
  int one = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(IP_TRANSPARENT)", subject);
  if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(IP_RECVORIGDSTADDR)", subject);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(SO_REUSEADDR)", subject);
  bool reuse_port = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(SO_REUSEPORT)", subject);
  // Every pod's queries share this one socket: the default buffer (net.core.rmem_default, ~208
  // KiB, about 256 small datagrams) overflows in a burst.
  SetReceiveBuffer(fd, kListenReceiveBuffer);
  // Each datagram then carries the socket's drop count: an overflow is seen, not silent.
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr)) return FailClosing(env, fd, "bind", subject);
  return MakeHandle(env, fd, subject, info[2], kListenBatch, kListenDatagram);
}

// udpReplySocket(ip, port) -> handle for sending only, bound to ip:port (any address: the
// original destination of a redirected query), so replies carry it as their source.
Napi::Value UdpReplySocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port;
  sockaddr_in addr;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port") || !ParseAddr(env, ip, port, &addr)) return env.Null();
  std::string subject = Subject(addr);
  int fd = OpenUdp(env, subject);
  if (fd < 0) return env.Null();
  int one = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(IP_TRANSPARENT)", subject);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(SO_REUSEADDR)", subject);
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr)) return FailClosing(env, fd, "bind", subject);
  return MakeHandle(env, fd, subject, env.Undefined());
}

// udpConnectMarked(ip, port, mark, callback(records)) -> handle connected to ip:port whose
// datagrams, the first included, carry `mark`; the server's replies come to callback.
Napi::Value UdpConnectMarked(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port, mark;
  sockaddr_in addr;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port") || !ArgInt(info, 2, &mark, "mark") ||
      !ParseAddr(env, ip, port, &addr)) {
    return env.Null();
  }
  if (mark < 0 || mark > 0xffffffffLL) {
    ThrowTypeError(env, "mark out of range: " + std::to_string(mark));
    return env.Null();
  }
  if (info.Length() < 4 || !info[3].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return env.Null();
  }
  std::string subject = Subject(addr);
  int fd = OpenUdp(env, subject);
  if (fd < 0) return env.Null();
  uint32_t m = static_cast<uint32_t>(mark);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m)) return FailClosing(env, fd, "setsockopt(SO_MARK)", subject);
  SetReceiveBuffer(fd, kUpstreamReceiveBuffer);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr)) return FailClosing(env, fd, "connect", subject);
  return MakeHandle(env, fd, subject, info[3], kUpstreamBatch, kUpstreamDatagram);
}

// udpSend(handle, data[, ip, port]) -> bytes sent. Without ip:port the socket must be connected.
// EAGAIN (socket buffer full) is thrown like any other error: the caller counts the loss.
Napi::Value UdpSend(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  if (!h) return env.Null();
  Napi::Uint8Array data;
  if (!ArgBytes(info, 1, &data, "data")) return env.Null();
  if (h->closed) {
    ThrowSystemError(env, "sendto", EBADF, Subject(h->local));
    return env.Null();
  }
  ssize_t n;
  sockaddr_in to;
  bool addressed = info.Length() > 2 && !info[2].IsUndefined();
  if (addressed) {
    std::string ip;
    int64_t port;
    if (!ArgString(info, 2, &ip, "ip") || !ArgInt(info, 3, &port, "port") || !ParseAddr(env, ip, port, &to)) return env.Null();
    n = sendto(h->fd, data.Data(), data.ByteLength(), MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&to), sizeof to);
  } else {
    n = send(h->fd, data.Data(), data.ByteLength(), MSG_DONTWAIT);
  }
  if (n < 0) {
    // The subject only on failure: formatting it is most of this call's own cost.
    int err = errno;
    ThrowSystemError(env, "sendto", err, addressed ? Subject(h->local) + " -> " + Subject(to) : Subject(h->local));
    return env.Null();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// Datagrams per sendmmsg call of udpSendBatch (UIO_MAXIOV is far above; this bounds the stack).
constexpr unsigned kSendChunk = 64;

// udpSendBatch(handle, datas, ips|undefined, ports|undefined, status: Int32Array) -> failures.
// Sends datas[i] (to ips[i]:ports[i], or to the connected peer without ips) with sendmmsg, one
// syscall per up to 64 datagrams, in order. status[i] is 0 when datagram i went out, else its
// errno: the kernel's for the first datagram a call could not send (EAGAIN: buffer full), EINVAL
// for an entry that is not bytes or whose address does not parse (not sent, the others are).
// Throws only for a bad handle or argument shapes, before anything is sent.
Napi::Value UdpSendBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  if (!h) return env.Null();
  if (info.Length() < 5 || !info[1].IsArray() || !info[4].IsTypedArray() ||
      info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowTypeError(env, "udpSendBatch(handle, datas[], ips[]|undefined, ports[]|undefined, status: Int32Array)");
    return env.Null();
  }
  Napi::Array datas = info[1].As<Napi::Array>();
  bool addressed = !info[2].IsUndefined();
  if (addressed && (!info[2].IsArray() || !info[3].IsArray())) {
    ThrowTypeError(env, "ips and ports must be arrays (or both undefined for a connected socket)");
    return env.Null();
  }
  Napi::Int32Array status = info[4].As<Napi::Int32Array>();
  uint32_t count = datas.Length();
  if (status.ElementLength() < count || (addressed && (info[2].As<Napi::Array>().Length() < count || info[3].As<Napi::Array>().Length() < count))) {
    ThrowTypeError(env, "ips, ports and status must hold an entry per datagram");
    return env.Null();
  }
  Napi::Array ips = addressed ? info[2].As<Napi::Array>() : Napi::Array();
  Napi::Array ports = addressed ? info[3].As<Napi::Array>() : Napi::Array();
  int32_t *st = status.Data();
  uint32_t failures = 0;
  mmsghdr msgs[kSendChunk];
  iovec iovs[kSendChunk];
  sockaddr_in tos[kSendChunk];
  uint32_t index[kSendChunk];
  char ip[INET_ADDRSTRLEN + 1];
  for (uint32_t base = 0; base < count;) {
    unsigned m = 0;
    // Fill up to a chunk of valid entries; invalid ones are marked and skipped.
    for (; base < count && m < kSendChunk; base++) {
      Napi::Value d = datas[base];
      if (h->closed || !d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        st[base] = h->closed ? EBADF : EINVAL;
        failures++;
        continue;
      }
      Napi::Uint8Array bytes = d.As<Napi::Uint8Array>();
      msgs[m] = mmsghdr{};
      iovs[m].iov_base = bytes.Data();
      iovs[m].iov_len = bytes.ByteLength();
      msgs[m].msg_hdr.msg_iov = &iovs[m];
      msgs[m].msg_hdr.msg_iovlen = 1;
      if (addressed) {
        Napi::Value ipv = ips[base];
        Napi::Value portv = ports[base];
        size_t len = 0;
        bool ok = ipv.IsString() && portv.IsNumber() &&
                  napi_get_value_string_utf8(env, ipv, ip, sizeof ip, &len) == napi_ok && len < INET_ADDRSTRLEN;
        double port = ok ? portv.As<Napi::Number>().DoubleValue() : -1;
        tos[m] = sockaddr_in{};
        tos[m].sin_family = AF_INET;
        if (!ok || !(port >= 0 && port <= 65535) || port != static_cast<double>(static_cast<int>(port)) ||
            inet_pton(AF_INET, ip, &tos[m].sin_addr) != 1) {
          st[base] = EINVAL;
          failures++;
          continue;
        }
        tos[m].sin_port = htons(static_cast<uint16_t>(port));
        msgs[m].msg_hdr.msg_name = &tos[m];
        msgs[m].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      index[m] = base;
      m++;
    }
    // sendmmsg stops at the first datagram it cannot send and reports the count before it; that
    // one's error comes from the next call, which is made for it (and marks it), then the rest go.
    for (unsigned done = 0; done < m;) {
      int r = sendmmsg(h->fd, msgs + done, m - done, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        st[index[done]] = errno;
        failures++;
        done++;
        continue;
      }
      for (int k = 0; k < r; k++) st[index[done + k]] = 0;
      done += static_cast<unsigned>(r);
    }
  }
  return Napi::Number::New(env, failures);
}

// udpAddress(handle) -> {ip, port}: the socket's own address (the listener's port when bound to 0).
Napi::Value UdpAddress(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  if (!h) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ip", AddrString(h->local));
  o.Set("port", Napi::Number::New(env, ntohs(h->local.sin_port)));
  return o;
}

// udpReceiveInfo(handle) -> {receiveBuffer, drops}: SO_RCVBUF as the kernel reports it (twice
// what was asked: it counts its bookkeeping), and the datagrams it dropped on this socket so far
// (SO_MEMINFO's SK_MEMINFO_DROPS, the sk_drops SO_RXQ_OVFL reports). Throws EBADF once closed.
Napi::Value UdpReceiveInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  if (!h) return env.Null();
  if (h->closed) {
    ThrowSystemError(env, "getsockopt", EBADF, Subject(h->local));
    return env.Null();
  }
  int rcvbuf = 0;
  socklen_t len = sizeof rcvbuf;
  if (getsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len)) {
    ThrowSystemError(env, "getsockopt(SO_RCVBUF)", errno, Subject(h->local));
    return env.Null();
  }
  uint32_t mem[SK_MEMINFO_VARS] = {0};
  len = sizeof mem;
  if (getsockopt(h->fd, SOL_SOCKET, SO_MEMINFO, mem, &len)) {
    ThrowSystemError(env, "getsockopt(SO_MEMINFO)", errno, Subject(h->local));
    return env.Null();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("receiveBuffer", Napi::Number::New(env, rcvbuf));
  o.Set("drops", Napi::Number::New(env, mem[SK_MEMINFO_DROPS]));
  return o;
}

// udpSetReceiveBuffer(handle, bytes): asks for a receive buffer of `bytes` (SO_RCVBUFFORCE, else
// SO_RCVBUF, which the kernel caps at rmem_max and raises to its minimum).
Napi::Value UdpSetReceiveBuffer(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  int64_t bytes;
  if (!h || !ArgInt(info, 1, &bytes, "bytes")) return env.Null();
  if (bytes < 0 || bytes > (1LL << 30)) {
    ThrowTypeError(env, "bytes out of range: " + std::to_string(bytes));
    return env.Null();
  }
  if (!h->closed) SetReceiveBuffer(h->fd, static_cast<int>(bytes));
  return env.Undefined();
}

// udpClose(handle): stops receiving and closes the socket; idempotent.
Napi::Value UdpClose(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  UdpHandle *h = HandleArg(info, 0);
  if (!h) return env.Null();
  CloseHandle(h);
  return env.Undefined();
}

}  // namespace

void InitUdp(Napi::Env env, Napi::Object exports) {
  exports.Set("udpListenTransparent", Napi::Function::New(env, UdpListenTransparent));
  exports.Set("udpReplySocket", Napi::Function::New(env, UdpReplySocket));
  exports.Set("udpConnectMarked", Napi::Function::New(env, UdpConnectMarked));
  exports.Set("udpSend", Napi::Function::New(env, UdpSend));
  exports.Set("udpSendBatch", Napi::Function::New(env, UdpSendBatch));
  exports.Set("udpAddress", Napi::Function::New(env, UdpAddress));
  exports.Set("udpClose", Napi::Function::New(env, UdpClose));
  exports.Set("udpReceiveInfo", Napi::Function::New(env, UdpReceiveInfo));
  exports.Set("udpSetReceiveBuffer", Napi::Function::New(env, UdpSetReceiveBuffer));
}

}  // namespace membrane
