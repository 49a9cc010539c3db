/// A deterministic-cost workload: a fixed number of requests from one client, run twice (short and long) under
/// callgrind and under strace, so that the difference divided by the extra requests is the cost of one request
/// with start-up, warm-up and shutdown cancelled out.
struct CostWorkload: Sendable {
    let id: String
    let title: String
    /// The throughput workload whose server command (and whose skip rules) it borrows.
    let base: Workload
    /// Requests of the short and of the long run.
    let shortRequests: Int
    let longRequests: Int

    var extraRequests: Int { longRequests - shortRequests }

    /// A process per request under valgrind costs a fork of the whole valgrind process and a profile file per
    /// child: those servers run 10 and 60 requests (a per-request cost is a per-request cost at any count).
    /// Python's interpreter under valgrind is as slow again: its servers run a quarter of the requests.
    func requests(for spec: ServerSpec) -> (short: Int, long: Int) {
        if spec.concurrency == .processes && base.kind != .pingPong { return (10, 60) }
        if spec.id.hasPrefix("py-") { return (max(5, shortRequests / 4), longRequests / 4) }
        return (shortRequests, longRequests)
    }

    static let tcp = CostWorkload(
        id: "cost-tcp", title: "TCP echo, 64-byte ping-pong over one connection", base: .echo1,
        shortRequests: 200, longRequests: 1200)
    static let udp = CostWorkload(
        id: "cost-udp", title: "UDP echo, 64-byte datagrams from one client", base: .udp,
        shortRequests: 200, longRequests: 1200)
    static let connect = CostWorkload(
        id: "cost-connect", title: "connect per request (connect, 64 bytes, echo, close), one client", base: .connect10,
        shortRequests: 20, longRequests: 220)

    static let all: [CostWorkload] = [tcp, udp, connect]
}
