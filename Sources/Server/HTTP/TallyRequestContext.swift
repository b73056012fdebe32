import Hummingbird
import NIOCore

/// The request context of Tally's routes: Hummingbird's basics plus the peer address, which
/// per-IP rate limits key on (it is never stored).
public struct TallyRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
