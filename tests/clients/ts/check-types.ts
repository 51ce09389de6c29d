// Walks the generated TypeScript with the compiler's own checker: every success answer of the
// document (but a 204 and non-JSON bodies) must have a declared shape in both clients, never
// `unknown`, `any`, `never` or an object with no declared property ({} or a bare
// Record<string, …>). Prints each that does not, naming the operation; exits 1 if any.
//
//   node out/src/check-types.js openapi.json gen/openapi-fetch/schema.d.ts gen/hey-api/types.gen.ts

import { readFileSync } from "node:fs";
import ts from "typescript";

interface Answer {
  operationId: string;
  method: string;
  path: string;
  status: string;
  declared: boolean;
}

type Json = Record<string, unknown>;

function successes(document: Json): Answer[] {
  const found: Answer[] = [];
  for (const [path, methods] of Object.entries(document["paths"] as Record<string, Json>)) {
    for (const [method, operation] of Object.entries(methods as Record<string, Json>)) {
      const responses = operation["responses"] as Record<string, Json> | undefined;
      if (!responses) continue;
      for (const [status, answer] of Object.entries(responses)) {
        if (!status.startsWith("2") || status === "204") continue;
        const media = Object.keys((answer["content"] as Json | undefined) ?? {});
        if (media.length > 0 && !media.some((m) => m.split(";")[0]?.trim().endsWith("json"))) continue;
        found.push({ operationId: String(operation["operationId"]), method, path, status, declared: media.length > 0 });
      }
    }
  }
  return found;
}

const [documentPath, schemaPath, heyApiPath] = process.argv.slice(2);
if (!documentPath || !schemaPath || !heyApiPath) throw new Error("usage: check-types openapi.json schema.d.ts types.gen.ts");
const answers = successes(JSON.parse(readFileSync(documentPath, "utf8")) as Json);
const program = ts.createProgram([schemaPath, heyApiPath], {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
});
const checker = program.getTypeChecker();

function exportsOf(path: string): Map<string, ts.Symbol> {
  const source = program.getSourceFile(path);
  const module = source && checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`${path}: not a module`);
  return new Map(checker.getExportsOfModule(module).map((s) => [s.getName(), s]));
}

function property(type: ts.Type, name: string): ts.Type | undefined {
  const symbol = checker.getPropertyOfType(type, name);
  return symbol && checker.getNonNullableType(checker.getTypeOfSymbol(symbol));
}

/** Why `type` is no declared shape, or undefined when it is one. */
function untyped(type: ts.Type): string | undefined {
  if (type.flags & ts.TypeFlags.Any) return "any";
  if (type.flags & ts.TypeFlags.Unknown) return "unknown";
  if (type.flags & ts.TypeFlags.Never) return "never (no body)";
  if (type.isUnion()) {
    const reasons = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined))).map(untyped);
    return reasons.find((r) => r !== undefined);
  }
  if (checker.isArrayType(type)) {
    const [element] = checker.getTypeArguments(type as ts.TypeReference);
    return element && untyped(element);
  }
  if (type.flags & ts.TypeFlags.Object && checker.getPropertiesOfType(type).length === 0) {
    return `an object with no declared property (${checker.typeToString(type)})`;
  }
  return undefined;
}

function openapiTypescript(answer: Answer): string | undefined {
  const paths = exportsOf(schemaPath!).get("paths");
  if (!paths) return "no paths interface";
  const operation = property(checker.getDeclaredTypeOfSymbol(paths), answer.path);
  const method = operation && property(operation, answer.method);
  const response = method && property(property(method, "responses") ?? method, answer.status);
  if (!response) return "no such response";
  const content = property(response, "content");
  if (!content || content.flags & ts.TypeFlags.Never) return "no body (content?: never)";
  const media = checker.getPropertiesOfType(content).map((s) => checker.getTypeOfSymbol(s));
  return media.length === 0 ? "no media type" : media.map(untyped).find((r) => r !== undefined);
}

function heyApi(answer: Answer): string | undefined {
  const name = `${answer.operationId.split(/[_\W]+/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("")}Responses`;
  const responses = exportsOf(heyApiPath!).get(name);
  if (!responses) return `no type ${name}`;
  const type = property(checker.getDeclaredTypeOfSymbol(responses), answer.status);
  return type ? untyped(type) : `${name} has no ${answer.status}`;
}

let failures = 0;
for (const [generator, why] of [["openapi-typescript", openapiTypescript], ["hey-api", heyApi]] as const) {
  for (const answer of answers) {
    const reason = why(answer);
    if (reason !== undefined) {
      failures += 1;
      const declared = answer.declared ? "" : " [the document declares no body]";
      console.log(`${generator}: ${answer.operationId} (${answer.method.toUpperCase()} ${answer.path}) ${answer.status}: ${reason}${declared}`);
    }
  }
}
console.log(`${answers.length} success answers checked in each client, ${failures} without a declared shape`);
process.exitCode = failures > 0 ? 1 : 0;
