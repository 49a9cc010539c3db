/// Escaping for text placed in HTML: element content and attribute values alike.
enum HTMLEscaping {
    /// Replaces `&`, `<`, `>`, `"` and `'` with character references.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#x27;"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}
