// The contract and the server agree on error reasons. The proto comments are the API
// reference, so every reason a client can see must be listed there, and every reason they
// name must be one the server can answer. Both sides are read statically:
// - The server: every UPPER_SNAKE string literal in server/src (tests aside) is a reason,
//   whatever shape produces it (invalid(), notFound(), new LedgerError(), a usage outcome's
//   reason), unless `notReasons` below says why it is not. A reason added on the server
//   therefore fails this test until the contract lists it.
// - The contract: a reason is listed by a comment line "- REASON (CODE): when", where CODE
//   is a gRPC status code or a usage outcome. Any other UPPER_SNAKE word with an underscore
//   in a comment must be a listed reason, a status code or an enum value name.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const serverSourceDir = path.join(root, "server/src");
const protoDir = path.join(root, "proto");

const reasonPattern = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;

/**
 * UPPER_SNAKE literals in server/src that never reach a client as a reason. An entry
 * names a file and the literals it excuses there ("all" for a whole file), and says why.
 */
const notReasons: { file: string; literals: string[] | "all"; why: string }[] = [
  { file: "config.ts", literals: "all", why: "environment variable names; a bad setting stops the start" },
  { file: "main.ts", literals: ["SIGINT", "SIGTERM", "SIGHUP"], why: "signal names" },
  {
    file: "main.ts",
    literals: ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EADDRINUSE", "EACCES"],
    why: "Node's system error codes, read to advise on a failed start",
  },
  { file: "store/embedded-database.ts", literals: ["PG_VERSION"], why: "a file of the PostgreSQL data directory" },
  { file: "store/embedded-database.ts", literals: ["SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK"], why: "signal names" },
  { file: "store/database.ts", literals: ["COMMIT"], why: "the command tag PostgreSQL answers a commit with" },
  { file: "rpc/admin-ui.ts", literals: ["GET", "HEAD", "DENY"], why: "HTTP methods and an X-Frame-Options value" },
  { file: "rpc/grpc-js-server.ts", literals: ["POST"], why: "an HTTP method" },
  { file: "rpc/stripe-webhook.ts", literals: ["POST"], why: "an HTTP method" },
  { file: "jobs/webhook-delivery.ts", literals: ["POST"], why: "the HTTP method of a webhook delivery" },
  { file: "service/queue-caller.ts", literals: ["API_KEY_NOT_FOUND", "API_KEY_REVOKED", "API_KEY_EXPIRED", "API_KEY_ROLE_NOT_ALLOWED"], why: "why the usage queue's own key may not act: logged by the consumer, never answered to a caller" },
  { file: "metrics/server-metrics.ts", literals: ["GET", "HEAD"], why: "HTTP methods of GET /metrics" },
  { file: "rpc/cors.ts", literals: ["OPTIONS"], why: "the HTTP method of a CORS preflight" },
  { file: "metrics/rpc-metrics.ts", literals: ["OK"], why: "the grpc_code label of a call that succeeded (Code has no name for 0)" },
  { file: "rpc/observe-interceptor.ts", literals: ["OK"], why: "the code of a request log line for a call that succeeded" },
  { file: "store/traced-queries.ts", literals: ["QUERY"], why: "a database span's operation name when a statement has no keyword to name it" },
  { file: "rpc/health.ts", literals: ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"], why: "grpc.health.v1 ServingStatus names, answered as a status" },
];

/** The gRPC status codes by their canonical names, as the contract's comments write them. */
const statusCodes = new Set([
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED",
]);

/** Sites maps each word to where it occurs (file:line), for failure messages. */
type Sites = Map<string, string[]>;

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(suffix))
    .map((name) => path.join(dir, name))
    .sort();
}

function addSite(sites: Sites, word: string, site: string): void {
  sites.set(word, [...(sites.get(word) ?? []), site]);
}

/** Names that errors.js exports and that take a reason, bound in this file, with the reason's argument index. */
function reasonTakers(source: ts.SourceFile): Map<string, number> {
  const takers = new Map<string, number>();
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    if (!statement.moduleSpecifier.text.endsWith("/errors.js")) continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings === undefined || !ts.isNamedImports(bindings)) continue;
    for (const element of bindings.elements) {
      const imported = (element.propertyName ?? element.name).text;
      const index = { invalid: 0, notFound: 0, LedgerError: 1 }[imported];
      if (index !== undefined) takers.set(element.name.text, index);
    }
  }
  return takers;
}

/**
 * serverReasons reads every UPPER_SNAKE literal of server/src, minus notReasons, with where
 * it occurs; and every reason argument built at run time (a template or a concatenation),
 * which a static scan cannot see.
 */
function serverReasons(): { reasons: Sites; excused: Set<string>; built: string[] } {
  const reasons: Sites = new Map();
  const excused = new Set<string>();
  const built: string[] = [];
  for (const file of filesUnder(serverSourceDir, ".ts").filter((name) => !name.endsWith(".test.ts") && !name.endsWith(".d.ts"))) {
    const relative = path.relative(serverSourceDir, file);
    const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const takers = reasonTakers(source);
    const siteOf = (node: ts.Node) => `server/src/${relative}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && reasonPattern.test(node.text)) {
        const excuse = notReasons.find((entry) => entry.file === relative && (entry.literals === "all" || entry.literals.includes(node.text)));
        if (excuse === undefined) addSite(reasons, node.text, siteOf(node));
        else excused.add(`${relative}:${node.text}`);
      }
      if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && ts.isIdentifier(node.expression)) {
        const index = takers.get(node.expression.text);
        const reason = index === undefined ? undefined : node.arguments?.[index];
        if (reason !== undefined && (ts.isTemplateExpression(reason) || ts.isBinaryExpression(reason))) built.push(siteOf(reason));
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { reasons, excused, built };
}

/** commentLines returns the text after "//" of every line of a proto file, with its site. */
function commentLines(file: string): { text: string; site: string }[] {
  const relative = path.relative(root, file);
  return readFileSync(file, "utf8")
    .split("\n")
    .flatMap((line, index) => (line.includes("//") ? [{ text: line.slice(line.indexOf("//") + 2), site: `${relative}:${index + 1}` }] : []));
}

/** enumValueNames returns every enum value of a proto file, in full and without its enum's prefix. */
function enumValueNames(file: string): string[] {
  const code = readFileSync(file, "utf8").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/\benum\s+(\w+)\s*\{([^}]*)\}/g)].flatMap(([, name, body]) => {
    const prefix = `${name.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toUpperCase()}_`;
    return [...body.matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*=/gm)].flatMap(([, value]) => (value.startsWith(prefix) ? [value, value.slice(prefix.length)] : [value]));
  });
}

/**
 * contractReasons reads the proto comments: the listed reasons ("- REASON (CODE): when"),
 * lines that look like a listing but name no status code or outcome, and the other
 * UPPER_SNAKE words that are neither a status code nor an enum value name.
 */
function contractReasons(): { listed: Sites; malformed: string[]; named: Sites } {
  const files = filesUnder(protoDir, ".proto");
  const enumNames = new Set(files.flatMap(enumValueNames));
  const outcomes = new Set(enumValueNames(path.join(protoDir, "burndown/v1/usage.proto")).filter((name) => !name.startsWith("USAGE_OUTCOME_")));
  const listed: Sites = new Map();
  const named: Sites = new Map();
  const malformed: string[] = [];
  for (const { text, site } of files.flatMap(commentLines)) {
    const listing = /^\s*-\s+([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)\b(.*)$/.exec(text);
    if (listing !== null) {
      const code = /^ \(([A-Z][A-Z0-9_]*)\):/.exec(listing[2])?.[1];
      if (code === undefined || !(statusCodes.has(code) || outcomes.has(code))) malformed.push(`${site}: ${text.trim()}`);
      else addSite(listed, listing[1], site);
    }
    for (const [word] of text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)) {
      if (!statusCodes.has(word) && !enumNames.has(word)) addSite(named, word, site);
    }
  }
  return { listed, malformed, named };
}

const server = serverReasons();
const contract = contractReasons();

function where(words: string[], sites: Sites): string[] {
  return words.sort().map((word) => `${word} (${sites.get(word)!.join(", ")})`);
}

describe("error reasons: the contract and the server agree", () => {
  it("both sides are read: the server answers the reasons everyone knows, and the contract lists them", () => {
    expect(server.reasons.has("INSUFFICIENT_CREDITS") && server.reasons.has("EVENT_TOO_LATE")).toBe(true);
    expect(contract.listed.has("INSUFFICIENT_CREDITS") && contract.listed.has("EVENT_TOO_LATE")).toBe(true);
    expect(contract.listed.size).toBeGreaterThan(50);
  });

  it("every reason the server can answer is listed in a proto comment", () => {
    const unlisted = [...server.reasons.keys()].filter((reason) => !contract.listed.has(reason));
    expect(where(unlisted, server.reasons), 'list each as "- REASON (CODE): when" in the proto comments, or excuse it in notReasons').toEqual([]);
  });

  it("every reason a proto comment names is one the server can answer", () => {
    const unknown = [...new Set([...contract.listed.keys(), ...contract.named.keys()])].filter((reason) => !server.reasons.has(reason));
    const sites: Sites = new Map([...contract.named, ...contract.listed]);
    expect(where(unknown, sites), "the server never answers these; fix the comment or the server").toEqual([]);
  });

  it('every listing line reads "- REASON (CODE): when", CODE a status code or a usage outcome', () => {
    expect(contract.malformed).toEqual([]);
  });

  it("no reason is built at run time, where the scan cannot see it", () => {
    expect(server.built, "pass reasons as string literals").toEqual([]);
  });

  it("every notReasons entry still excuses a literal", () => {
    const stale = notReasons.flatMap((entry) =>
      entry.literals === "all"
        ? [...server.excused].some((key) => key.startsWith(`${entry.file}:`)) ? [] : [entry.file]
        : entry.literals.filter((literal) => !server.excused.has(`${entry.file}:${literal}`)).map((literal) => `${entry.file}: ${literal}`),
    );
    expect(stale).toEqual([]);
  });
});
