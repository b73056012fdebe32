import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON responses. Responses are small and not on the ingest decoding path, so Foundation's
/// encoder is fine here.
enum JSONBody {
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": message, "field": field}` with the status.
    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, offset: Int? = nil,
                      headers: HTTPFields = [:]) -> Response {
        response(ErrorBody(error: message, field: field, offset: offset), status: status, headers: headers)
    }

    struct ErrorBody: Encodable {
        var error: String
        var field: String?
        var offset: Int?
    }
}
