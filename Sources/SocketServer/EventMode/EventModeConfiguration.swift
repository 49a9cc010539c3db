extension EventMode {
    /// The limits and sizes of an `EventMode`; every field has a default that suits an echo-style server.
    ///
    /// Memory per connection is bounded by `maxBufferedInput + maxBufferedOutput` in the worst case; an idle
    /// connection holds no buffer at all (about 1 KB in total). Each loop also allocates two receive buffers
    /// of about `readChunkSize` bytes when it starts.
    ///
    /// A value outside its documented range is refused when a server is created with the mode: the
    /// initialiser throws `SocketServerError.invalidConfiguration` naming it (see `validate()`), so no server
    /// runs with a silently changed limit. The value is still clamped where it is stored, so that no value
    /// (`Int.max`, a negative size) can make a mode used without a server trap or allocate without bound:
    /// the clamped value is what a read gives back. The watermarks must be in order:
    /// `outputLowWatermark <= outputHighWatermark <= maxBufferedOutput`.
    public struct Configuration: Sendable {
        /// The smallest `readChunkSize`, 1 KiB.
        public static let minReadChunkSize = 1024
        /// The largest `readChunkSize`, 16 MiB (allocated twice per loop).
        public static let maxReadChunkSize = 16 << 20
        /// The longest `shutdownTimeout`, 2³² seconds (about 136 years): "for ever" without overflowing the
        /// nanosecond deadline computed from it.
        public static let maxShutdownTimeout = Duration.seconds(Int64(1) << 32)

        private var storedLoops = 1
        private var storedMaxConnections: Int?
        private var storedShutdownTimeout = Duration.seconds(5)
        private var storedReadChunkSize = 128 * 1024
        private var storedMaxBufferedInput = 64 * 1024
        private var storedOutputHighWatermark = 256 * 1024
        private var storedOutputLowWatermark = 64 * 1024
        private var storedMaxBufferedOutput = 4 * 1024 * 1024
        /// The fields that were given an out-of-range value (and clamped), for `validate()`.
        private var outOfRange: [String] = []

        /// Records `name` when `given` had to be changed to `kept`.
        private mutating func note<Value: Equatable>(_ name: String, _ given: Value, _ kept: Value) {
            if given != kept { outOfRange.append("\(name) \(given)") }
        }

        /// Checks that every field was given a value in its range and that the watermarks are in order.
        /// Called by the server initialisers that take an `EventMode`. O(1).
        /// - Throws: `SocketServerError.invalidConfiguration` naming the first offending fields.
        public func validate() throws {
            var problems = outOfRange.map { "\($0) is out of range" }
            if storedOutputLowWatermark > storedOutputHighWatermark {
                problems.append("outputLowWatermark \(storedOutputLowWatermark) exceeds outputHighWatermark \(storedOutputHighWatermark)")
            }
            if storedMaxBufferedOutput < storedOutputHighWatermark {
                problems.append("maxBufferedOutput \(storedMaxBufferedOutput) is below outputHighWatermark \(storedOutputHighWatermark)")
            }
            if let idleTimeout, idleTimeout <= .zero {
                problems.append("idleTimeout \(idleTimeout) is not positive")
            }
            guard problems.isEmpty else {
                throw SocketServerError.invalidConfiguration("EventMode.Configuration: " + problems.joined(separator: "; "))
            }
        }

        /// The number of event loops, each on its own thread; at least 1. Default: the CPUs this process may
        /// use.
        public var loops: Int {
            get { storedLoops }
            set {
                storedLoops = max(newValue, 1)
                note("loops", newValue, storedLoops)
            }
        }
        /// Above this many open connections the server stops accepting (the listener is disabled, new
        /// clients wait in the backlog) until one closes; at least 1. Default nil: no limit but the
        /// descriptor limit.
        public var maxConnections: Int? {
            get { storedMaxConnections }
            set {
                storedMaxConnections = newValue.map { max($0, 1) }
                note("maxConnections", newValue, storedMaxConnections)
            }
        }
        /// A connection on which nothing is received (or, while output is queued, nothing sent) for this
        /// long is closed with `EventModeError.idleTimeout`. Default nil: never. A connection whose handler
        /// paused reading and which has nothing queued is not timed. Must be positive.
        public var idleTimeout: Duration?
        /// How long `serverClose()` lets open connections finish before closing them, 0 ...
        /// `maxShutdownTimeout`. Default 5 seconds.
        public var shutdownTimeout: Duration {
            get { storedShutdownTimeout }
            set {
                storedShutdownTimeout = min(max(newValue, .zero), Self.maxShutdownTimeout)
                note("shutdownTimeout", newValue, storedShutdownTimeout)
            }
        }
        /// The largest single receive, into a buffer shared by the connections of a loop,
        /// `minReadChunkSize` ... `maxReadChunkSize`. Default 128 KiB.
        public var readChunkSize: Int {
            get { storedReadChunkSize }
            set {
                storedReadChunkSize = min(max(newValue, Self.minReadChunkSize), Self.maxReadChunkSize)
                note("readChunkSize", newValue, storedReadChunkSize)
            }
        }
        /// The most input a handler may leave unconsumed (a partial line, a partial message); more closes
        /// the connection with `EventModeError.inputLimitExceeded`. At least 1; `Int.max` means no limit
        /// (the buffer then grows with what the peer sends). Default 64 KiB.
        public var maxBufferedInput: Int {
            get { storedMaxBufferedInput }
            set {
                storedMaxBufferedInput = max(newValue, 1)
                note("maxBufferedInput", newValue, storedMaxBufferedInput)
            }
        }
        /// When this much output is queued for a peer that does not read, the connection stops reading.
        /// At least 1. Default 256 KiB.
        public var outputHighWatermark: Int {
            get { storedOutputHighWatermark }
            set {
                storedOutputHighWatermark = max(newValue, 1)
                note("outputHighWatermark", newValue, storedOutputHighWatermark)
            }
        }
        /// Reading resumes once queued output falls to this; 0 ... `outputHighWatermark`. Default 64 KiB.
        public var outputLowWatermark: Int {
            get { min(storedOutputLowWatermark, storedOutputHighWatermark) }
            set {
                storedOutputLowWatermark = max(newValue, 0)
                note("outputLowWatermark", newValue, storedOutputLowWatermark)
            }
        }
        /// A write that would queue more than this closes the connection with
        /// `EventModeError.outputLimitExceeded`; at least `outputHighWatermark`. Default 4 MiB.
        public var maxBufferedOutput: Int {
            get { max(storedMaxBufferedOutput, storedOutputHighWatermark) }
            set {
                storedMaxBufferedOutput = max(newValue, 1)
                note("maxBufferedOutput", newValue, storedMaxBufferedOutput)
            }
        }
        /// Sets `TCP_NODELAY` on accepted TCP connections, so small replies leave at once. Default true.
        public var disableNagleAlgorithm: Bool

        /// The defaults, with any field overridden by its argument (each clamped as its property says).
        /// O(1); from any thread.
        public init(
            loops: Int? = nil,
            maxConnections: Int? = nil,
            idleTimeout: Duration? = nil,
            shutdownTimeout: Duration = .seconds(5),
            readChunkSize: Int = 128 * 1024,
            maxBufferedInput: Int = 64 * 1024,
            outputHighWatermark: Int = 256 * 1024,
            outputLowWatermark: Int = 64 * 1024,
            maxBufferedOutput: Int = 4 * 1024 * 1024,
            disableNagleAlgorithm: Bool = true
        ) {
            self.idleTimeout = idleTimeout
            self.disableNagleAlgorithm = disableNagleAlgorithm
            self.loops = loops ?? EventLoopGroup.availableProcessorCount
            self.maxConnections = maxConnections
            self.shutdownTimeout = shutdownTimeout
            self.readChunkSize = readChunkSize
            self.maxBufferedInput = maxBufferedInput
            self.outputHighWatermark = outputHighWatermark
            self.outputLowWatermark = outputLowWatermark
            self.maxBufferedOutput = maxBufferedOutput
        }
    }
}
