import Foundation

/// Checks JSON against the subset of JSON Schema that docs/bench-report.schema.json uses:
/// type, required, properties, additionalProperties: false, items, enum, minimum and local
/// `$ref`s. Returns every violation as "path: problem".
struct SchemaValidator {
    let root: [String: Any]

    init(file: URL) throws {
        root = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
    }

    func violations(of value: Any) -> [String] {
        violations(of: value, schema: root, path: "$")
    }

    private func violations(of value: Any, schema: [String: Any], path: String) -> [String] {
        if let reference = schema["$ref"] as? String {
            let name = String(reference.dropFirst("#/$defs/".count))
            guard let definitions = root["$defs"] as? [String: Any], let target = definitions[name] as? [String: Any] else {
                return ["\(path): unknown $ref \(reference)"]
            }
            return violations(of: value, schema: target, path: path)
        }
        var problems: [String] = []
        if let type = schema["type"] as? String, !Self.matches(value, type: type) {
            return ["\(path): expected \(type), found \(Swift.type(of: value)) \(value)"]
        }
        if let allowed = schema["enum"] as? [String], let text = value as? String, !allowed.contains(text) {
            problems.append("\(path): \(text) is not one of \(allowed)")
        }
        if let minimum = (schema["minimum"] as? NSNumber)?.doubleValue, let number = (value as? NSNumber)?.doubleValue, number < minimum {
            problems.append("\(path): \(number) is below \(minimum)")
        }
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                problems.append("\(path): missing \(key)")
            }
            for (key, member) in object {
                if let property = properties[key] as? [String: Any] {
                    problems += violations(of: member, schema: property, path: "\(path).\(key)")
                } else if schema["additionalProperties"] as? Bool == false {
                    problems.append("\(path): \(key) is not in the schema")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (index, element) in array.enumerated() { problems += violations(of: element, schema: items, path: "\(path)[\(index)]") }
        }
        return problems
    }

    private static func matches(_ value: Any, type: String) -> Bool {
        let number = value as? NSNumber
        // JSON true and false come back as NSNumbers whose C type is char.
        let isBoolean = number.map { String(cString: $0.objCType) == "c" } ?? false
        switch type {
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "boolean": return isBoolean
        case "integer": return number != nil && !isBoolean && number!.doubleValue == number!.doubleValue.rounded()
        case "number": return number != nil && !isBoolean
        default: return false
        }
    }
}
