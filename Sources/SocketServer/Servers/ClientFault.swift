/// What a client did to make a request fail, when it was the client: how `handleError` picks a log level.
enum ClientFault {
    /// The peer reset or closed the connection under a read or write.
    case disconnect
    /// The peer timed out, or sent more than a limit allows.
    case misbehaved

    /// Classifies `error`; nil when it is not the client's doing (a handler's own error, the server's
    /// resources).
    init?(_ error: any Error) {
        switch error {
        case let error as SocketError:
            if error.isDisconnect {
                self = .disconnect
            } else if error.isTimeout {
                self = .misbehaved
            } else {
                return nil
            }
        case let error as SocketServerError:
            switch error {
            case .lineTooLong, .inputTooLong, .readLengthOutOfRange: self = .misbehaved
            default: return nil
            }
        case is ProxyProtocolError:
            self = .misbehaved
        case let error as EventModeError:
            switch error {
            case .idleTimeout, .inputLimitExceeded, .outputLimitExceeded, .shutdownDeadlineExpired:
                self = .misbehaved
            case .outOfMemory:
                return nil
            }
        case is any PeerCausedError:
            self = .misbehaved
        default:
            return nil
        }
    }
}
