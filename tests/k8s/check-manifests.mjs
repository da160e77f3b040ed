// check-manifests.mjs - offline schema check of Kubernetes manifests (SPEC §10).
//
//   node tests/k8s/check-manifests.mjs [--extract DIR] FILE.yaml...
//
// No API server is needed (kubectl cannot validate without one). Every YAML document of every
// file is checked twice, with pinned npm packages (tests/k8s/package.json, installed into
// tests/k8s/node_modules by `scripts/deps.sh test`):
//   1. kubernetes-models: types, required fields, formats, per apiVersion/kind;
//   2. a strict walk of @kubernetes/client-node's generated models (their attribute type maps):
//      every key must be a field of its type, which catches misspelled fields that (1) accepts.
// Each problem is printed as FILE:LINE: KIND/NAME: PATH: REASON; exit status 1 if there is any,
// 2 on bad usage or an unreadable file, 0 with a one-line summary otherwise.
// --extract DIR writes every document as DIR/<Kind>-<name>.json and every ConfigMap's data keys
// to DIR/<configmap>/<key>, so a test can check the pods' wiring and feed ebb's config to
// `ebb validate`.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LineCounter, parseAllDocuments } from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GEN = path.join(HERE, "node_modules/@kubernetes/client-node/dist/gen/models");

// client-node's leaf types: values are not walked further (kubernetes-models checks them).
const LEAVES = new Set(["string", "number", "boolean", "any", "object", "Date", "IntOrString",
                        "V1MicroTime"]);

const modelCache = new Map();

// The attribute type map of a generated model class, or null if there is no such class.
async function attributes(type) {
    if (modelCache.has(type))
        return modelCache.get(type);
    const file = path.join(GEN, type + ".js");
    let attrs = null;
    if (fs.existsSync(file)) {
        const mod = await import(file);
        attrs = mod[type].getAttributeTypeMap();
    }
    modelCache.set(type, attrs);
    return attrs;
}

// Walks value as an instance of client-node type `type`; reports unknown fields.
async function walk(value, type, at, report) {
    if (value === null || value === undefined || LEAVES.has(type))
        return;
    let m = /^Array<(.+)>$/.exec(type);
    if (m) {
        if (Array.isArray(value))
            for (let i = 0; i < value.length; i++)
                await walk(value[i], m[1], at.concat(i), report);
        return;
    }
    m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (m) {
        if (typeof value === "object" && !Array.isArray(value))
            for (const [k, v] of Object.entries(value))
                await walk(v, m[1], at.concat(k), report);
        return;
    }
    const attrs = await attributes(type);
    if (!attrs) {
        report(at, `internal: no model for type ${type} in @kubernetes/client-node`);
        return;
    }
    if (typeof value !== "object" || Array.isArray(value))
        return;   // a type error: kubernetes-models reports it
    for (const [k, v] of Object.entries(value)) {
        const a = attrs.find((x) => x.baseName === k);
        if (!a) {
            const near = attrs.map((x) => x.baseName).filter((n) => similar(n, k));
            report(at.concat(k), `unknown field "${k}" in ${type}` +
                   (near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(", ")}?)` : ""));
            continue;
        }
        await walk(v, a.type, at.concat(k), report);
    }
}

// Close enough to suggest: same letters but one edit, or a prefix/case difference.
function similar(a, b) {
    a = a.toLowerCase();
    b = b.toLowerCase();
    if (a === b || a.startsWith(b) || b.startsWith(a))
        return true;
    if (Math.abs(a.length - b.length) > 1)
        return false;
    let i = 0, j = 0, edits = 0;
    while (i < a.length && j < b.length) {
        if (a[i] === b[j]) { i++; j++; continue; }
        if (++edits > 1) return false;
        if (a.length > b.length) i++;
        else if (b.length > a.length) j++;
        else { i++; j++; }
    }
    return edits + (a.length - i) + (b.length - j) <= 1;
}

// ["spec", "containers", 0, "image"] -> "spec.containers[0].image"
function pathText(at) {
    return at.map((p, i) => (typeof p === "number" ? `[${p}]` : (i ? "." : "") + p)).join("");
}

// apiVersion/kind -> [kubernetes-models module, class, client-node type].
function modelsFor(apiVersion, kind) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
    const mod = "kubernetes-models/" + (group ? `${group}/${version}` : version);
    return [mod, kind, version.charAt(0).toUpperCase() + version.slice(1) + kind];
}

// kubernetes-models' validate() errors -> [path, reason] pairs.
function modelErrors(err) {
    const list = Array.isArray(err.errors) ? err.errors : null;
    if (!list)
        return [[[], String(err.message || err)]];
    return list.map((e) => {
        const p = (e.instancePath || e.dataPath || "").split("/").filter((s) => s !== "")
            .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, "/").replace(/~0/g, "~")));
        let reason = e.message || "invalid";
        if (e.params && e.params.missingProperty)
            reason = `missing required field "${e.params.missingProperty}"`;
        else if (e.params && e.params.allowedValues)
            reason += `: ${e.params.allowedValues.join(", ")}`;
        return [p, reason];
    });
}

async function checkDoc(file, doc, lc, extractDir, problems) {
    const obj = doc.toJS();
    // The line of the key (or list item) at path `at`, else of its nearest ancestor.
    const lineOf = (at) => {
        for (let n = at.length; n > 0; n--) {
            const parent = n > 1 ? doc.getIn(at.slice(0, n - 1), true) : doc.contents;
            let node = null;
            if (parent && Array.isArray(parent.items)) {
                const last = at[n - 1];
                node = typeof last === "number" ? parent.items[last]
                     : (parent.items.find((p) => p.key && p.key.value === last) || {}).key;
            }
            if (node && node.range)
                return lc.linePos(node.range[0]).line;
        }
        return doc.contents && doc.contents.range ? lc.linePos(doc.contents.range[0]).line : 1;
    };
    const name = obj && obj.metadata && obj.metadata.name;
    const what = `${obj && obj.kind}/${name}`;
    const report = (at, reason) => problems.push(
        `${file}:${lineOf(at)}: ${what}: ${at.length ? pathText(at) : "(document)"}: ${reason}`);

    if (!obj || typeof obj !== "object" || !obj.apiVersion || !obj.kind) {
        report([], "not a Kubernetes object (apiVersion and kind are required)");
        return;
    }
    const [mod, cls, type] = modelsFor(String(obj.apiVersion), String(obj.kind));
    let M;
    try {
        M = (await import(mod))[cls];
    } catch (e) {
        M = undefined;
    }
    if (!M) {
        report(["kind"], `unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
        return;
    }
    try {
        new M(obj).validate();
    } catch (e) {
        for (const [p, reason] of modelErrors(e))
            report(p, reason);
    }
    await walk(obj, type, [], report);

    if (extractDir)
        fs.writeFileSync(path.join(extractDir, `${obj.kind}-${name}.json`), JSON.stringify(obj));
    if (extractDir && obj.kind === "ConfigMap" && obj.data) {
        const dir = path.join(extractDir, String(name));
        fs.mkdirSync(dir, { recursive: true });
        for (const [k, v] of Object.entries(obj.data))
            fs.writeFileSync(path.join(dir, k), String(v));
    }
}

async function main() {
    const args = process.argv.slice(2);
    let extractDir = null;
    if (args[0] === "--extract") {
        extractDir = args[1];
        args.splice(0, 2);
        fs.mkdirSync(extractDir, { recursive: true });
    }
    if (!args.length || args.some((a) => a.startsWith("-"))) {
        console.error("usage: node tests/k8s/check-manifests.mjs [--extract DIR] FILE.yaml...");
        process.exit(2);
    }
    const problems = [];
    let docs = 0;
    for (const file of args) {
        let text;
        try {
            text = fs.readFileSync(file, "utf8");
        } catch (e) {
            console.error(`check-manifests: ${file}: ${e.message}`);
            process.exit(2);
        }
        const lc = new LineCounter();
        for (const doc of parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true })) {
            if (doc.errors.length) {
                for (const e of doc.errors)
                    problems.push(`${file}:${e.linePos ? e.linePos[0].line : 1}: YAML: ${e.message.split("\n")[0]}`);
                continue;
            }
            if (doc.contents === null)
                continue;   // an empty document (a trailing ---)
            docs++;
            await checkDoc(file, doc, lc, extractDir, problems);
        }
    }
    for (const p of problems)
        console.log(p);
    if (problems.length) {
        console.log(`check-manifests: ${problems.length} problem(s) in ${docs} document(s)`);
        process.exit(1);
    }
    console.log(`check-manifests: ${docs} document(s) in ${args.length} file(s): ok`);
}

main().catch((e) => {
    console.error(`check-manifests: ${e.stack || e}`);
    process.exit(2);
});
