// A Webex session sent by Cisco's own JS SDK (the `webex` package's meetings
// build), in Node, through a proxy, for phonehome's end-to-end test.
//
//   HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS=ca.pem \
//     node client.js --out truth.json
//
// Every request comes from the SDK's own code: device registration, the service
// catalog, the geo hint, the metrics plugins (Call Analyzer client events,
// pre-login events, legacy, behavioral, operational and business metrics, the
// WebRTC stats stream) and the log upload. The client only decides when each
// is called: one step per moment of a session, flushed before the next step.
// truth.json lists every request the SDK made (seen through the SDK's own
// request:success / request:failure events) with the trigger a reader of the
// SDK source gives it, and the moment it was made in.
"use strict";

const fs = require("fs");
const crypto = require("crypto");
const { setGlobalDispatcher, ProxyAgent } = require("undici");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const OUT = arg("out", "truth.json");
const ORG_ID = "1eb65fdf-9643-417f-9974-ad72cae0e10f";
// A user token has three parts, the last the org id (webex-core credentials.js).
const TOKEN = "ZDI3MGEyYzQtNmFlNS00NDNhLWFlNzAtZGVjNjE0MGU1OGZmZWNmZDEwN2ItYTU3_PF84_" + ORG_ID;

// The SDK is written for browsers: it reads `window.location.hostname` (the page
// that embeds it, sent as webClientDomain), `window.navigator` and the window's
// timers. Node 20 has no `window`, so the client gives it the page it would run
// in, with Node's own timers. Nothing of the SDK itself is replaced.
const NAVIGATOR = {
  userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    + "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  language: "en-US",
  platform: "MacIntel",
};
globalThis.navigator = globalThis.navigator || NAVIGATOR;
globalThis.window = {
  location: new URL("https://web.webex.com/meeting"), navigator: NAVIGATOR,
  setInterval, clearInterval, setTimeout, clearTimeout,
};

const proxy = process.env.HTTPS_PROXY || process.env.https_proxy;
if (proxy) {
  setGlobalDispatcher(new ProxyAgent(proxy));  // fetch(); the SDK's `request` reads HTTPS_PROXY
}

const Webex = require("webex/meetings");
const BEHAVIORAL = require("@webex/plugin-meetings/dist/metrics/constants").default;
const RtcMetrics = require("@webex/internal-plugin-metrics/dist/rtcMetrics").default;

// Most specific first: the order rules/README.md gives for a flow's trigger.
const ORDER = ["error", "screen_share", "meeting_create", "meeting_join", "meeting_leave",
  "sign_in", "setup", "app_start", "shutdown", "collaboration", "in_meeting", "periodic"];
const mostSpecific = (triggers) => {
  const known = triggers.filter((t) => ORDER.includes(t));
  return known.length ? known.sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b))[0] : "unknown";
};

const truth = { sdk: {}, requests: [], events: [] };
const expected = new Map();  // event name → trigger, set as each is submitted
let moment = "setup";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const uuid = () => crypto.randomUUID();

function eventNames(body) {
  if (!body || typeof body !== "object" || !Array.isArray(body.metrics)) {
    return [];
  }
  const names = [];
  for (const item of body.metrics) {
    const event = item.eventPayload && item.eventPayload.event;
    if (event && event.name) {
      names.push(event.name);
    } else if (item.metricName) {
      names.push(item.metricName);
    } else if (item.eventPayload && item.eventPayload.key) {
      names.push(item.eventPayload.key);
    } else if (Array.isArray(item.data)) {
      names.push(...item.data.map((d) => d.name));
    }
  }
  return names;
}

// Requests without events: what the endpoint is for, then the moment.
function requestTrigger(method, url, names) {
  if (names.length) {
    return mostSpecific(names.map((n) => expected.get(n)));
  }
  if (url.includes("/u2c/api/")) return "app_start";  // the catalog, at every start
  if (url.includes("clientmetrics") && url.includes("alias=true")) return "sign_in";
  return moment;
}

function record(options, status) {
  const base = options.uri || "";
  const query = options.qs ? new URLSearchParams(options.qs).toString() : "";
  const url = query && !base.includes("?") ? `${base}?${query}` : base;
  const method = (options.method || "GET").toUpperCase();
  const names = eventNames(options.body);
  truth.requests.push({
    method, url, path: new URL(url).pathname, events: names, moment, status,
    trigger: requestTrigger(method, url, names),
  });
}

function expect(name, trigger) {
  expected.set(name, trigger);
  truth.events.push({ name, trigger, moment });
}

async function main() {
  const webex = Webex.init({
    credentials: { access_token: TOKEN },
    config: {
      logger: { level: "error" },
      metrics: { batcherWait: 100, batcherMaxWait: 400 },
      meetings: { metrics: { clientName: "phonehome-e2e", clientVersion: "1.0.0" } },
    },
  });
  webex.on("request:success", (options, response) => record(options, response.statusCode));
  webex.on("request:failure", (options, reason) => record(options, (reason && reason.statusCode) || 0));
  await new Promise((resolve) => webex.once("ready", resolve));
  truth.sdk = { package: "webex/meetings", version: webex.version };
  const metrics = webex.internal.metrics;
  const newMetrics = webex.internal.newMetrics;
  // plugin-meetings' Metrics.sendBehavioralMetric, with the batcher's promise kept
  const behavioral = (name, trigger, fields) => {
    expect(name, trigger);
    return metrics.submitClientMetrics(name, { type: webex.config.metrics.type, fields: fields || {}, tags: {} });
  };
  const client = (name, trigger, payload, options) => {
    expect(name, trigger);
    return newMetrics.submitClientEvent({ name, payload, options });
  };
  // Each step's sends are flushed (the batchers resolve when their request is answered).
  const step = async (name, body) => {
    moment = name;
    await body();
    await sleep(700);  // the batchers' wait, so nothing spills into the next step
  };

  const correlationId = uuid();
  const preLoginId = uuid();

  await step("setup", async () => {
    expect("JS_SDK_WDM_REGISTRATION_SUCCESSFUL", "setup");
    await webex.internal.device.register();
    await webex.meetings.getGeoHint();
    // meetings.register() reports each of its steps (the geo hint above is one)
    await behavioral(BEHAVIORAL.MEETINGS_REGISTRATION_STEP, "setup", { step: "getGeoHint", success: true });
    await Promise.all([
      client("client.webexapp.launched", "setup", {}, { correlationId: uuid() }),
      behavioral(BEHAVIORAL.REACHABILITY_COMPLETED, "setup", {
        reachability_public_udp_success: 3, reachability_public_udp_failed: 0,
        reachability_public_tcp_success: 2, reachability_vmn_udp_success: 0,
      }),
    ]);
  });

  await step("sign_in", async () => {
    await client("client.login.end", "sign_in", {}, { preLoginId, correlationId: uuid() });
    await newMetrics.clientMetricsAliasUser(preLoginId);
  });

  await step("meeting_create", async () => {
    await behavioral(BEHAVIORAL.ADHOC_MEETING_SUCCESS, "meeting_create", { correlation_id: correlationId });
  });

  const join = { correlationId };
  await step("meeting_join", async () => {
    // join() refreshes a permission token close to expiry first (reason "ttl-join")
    await behavioral(BEHAVIORAL.PERMISSION_TOKEN_REFRESH, "meeting_join", {
      correlationId, timeLeft: 42, expiryTime: Date.now() + 42000, currentTime: Date.now(), reason: "ttl-join",
    });
    await client("client.meetinginfo.request", "meeting_join", {}, join);
    await client("client.meetinginfo.response", "meeting_join", {}, join);
    await Promise.all([
      client("client.call.initiated", "meeting_join", { trigger: "user-interaction", isRoapCallEnabled: true }, join),
      client("client.locus.join.request", "meeting_join", {}, join),
    ]);
    await client("client.locus.join.response", "meeting_join", { trigger: "loci-update" }, join);
    await Promise.all([
      client("client.media.capabilities", "meeting_join", {
        mediaCapabilities: {
          rx: { audio: true, video: true, share: true, share_audio: true, whiteboard: true },
          tx: { audio: true, video: true, share: false, share_audio: false, whiteboard: false },
        },
      }, join),
      client("client.media-engine.local-sdp-generated", "meeting_join", {}, join),
      client("client.roap-message.sent", "meeting_join", { roap: { type: "OFFER", seq: 1 } }, join),
      client("client.roap-message.received", "meeting_join", { roap: { type: "ANSWER", seq: 1 } }, join),
      client("client.media-engine.remote-sdp-received", "meeting_join", {}, join),
      client("client.ice.start", "meeting_join", {}, join),
    ]);
    await Promise.all([
      client("client.ice.end", "meeting_join", { icePhase: "JOIN_MEETING_FINAL" }, join),
      client("client.media-engine.ready", "meeting_join", {}, join),
      client("client.media.tx.start", "meeting_join", { mediaType: "audio" }, join),
      client("client.media.rx.start", "meeting_join", { mediaType: "video" }, join),
    ]);
    // addMedia() times the TURN discovery on its own, before the media is up
    await behavioral(BEHAVIORAL.TURN_DISCOVERY_LATENCY, "meeting_join", { correlation_id: correlationId, latency: 212 });
    await behavioral(BEHAVIORAL.JOIN_SUCCESS, "meeting_join", { correlation_id: correlationId });
    await behavioral(BEHAVIORAL.ROAP_OFFER_TO_ANSWER_LATENCY, "meeting_join", { correlation_id: correlationId, latency: 380 });
    await behavioral(BEHAVIORAL.ADD_MEDIA_SUCCESS, "meeting_join", {
      correlation_id: correlationId, connectionType: "udp", isMultistream: true, numTransports: 1,
      iceCandidatesCount: 4, retriedWithTurnServer: false,
    });
  });

  await step("in_meeting", async () => {
    await client("client.muted", "in_meeting", { mediaType: "audio", trigger: "user-interaction" }, join);
    await client("client.unmuted", "in_meeting", { mediaType: "audio", trigger: "user-interaction" }, join);
    await client("client.media.tx.stop", "in_meeting", { mediaType: "video" }, join);
    // the locus parser reports a delta that arrived out of order
    await behavioral(BEHAVIORAL.LOCUS_DELTA_OUT_OF_ORDER, "in_meeting", { stack: new Error().stack });
    expect("stats-report", "in_meeting");
    const rtc = new RtcMetrics(webex, { meetingId: uuid() }, correlationId);
    rtc.addMetrics({
      name: "stats-report",
      payload: [JSON.stringify([{ type: "inbound-rtp", kind: "audio", jitter: 0.004, packetsLost: 1 }])],
    });
    rtc.sendMetricsInQueue();
    await sleep(400);
  });

  await step("screen_share", async () => {
    await Promise.all([
      client("client.share.initiated", "screen_share", { mediaType: "share", shareInstanceId: uuid() }, join),
      client("client.share.floor-grant.request", "screen_share", { mediaType: "share" }, join),
    ]);
    await client("client.share.floor-granted.local", "screen_share", { mediaType: "share" }, join);
    await behavioral(BEHAVIORAL.MEETING_SHARE_SUCCESS, "screen_share", { correlation_id: correlationId });
    await client("client.share.stopped", "screen_share", { mediaType: "share" }, join);
    await client("client.media.render.start", "screen_share", { mediaType: "share" }, join);
    await client("client.media.render.stop", "screen_share", { mediaType: "share" }, join);
  });

  await step("error", async () => {
    await behavioral(BEHAVIORAL.MERCURY_CONNECTION_FAILURE, "error", { correlation_id: correlationId, reason: "socket closed" });
    await client("client.media.reconnecting", "error", {}, join);
    // a failed ICE restart: the SDK turns the raw error into errors[]
    const iceFailed = new Error("ICE connection failed");
    iceFailed.name = "IceFailure";
    await client("client.ice.end", "error", { icePhase: "IN_MEETING" }, { ...join, rawError: iceFailed });
    await behavioral(BEHAVIORAL.MUTE_AUDIO_FAILURE, "error", {
      correlation_id: correlationId, reason: "Mute request failed", stack: "Error: Mute request failed\n    at Meeting.mute",
    });
    await client("client.media.recovered", "in_meeting", {}, join);
  });

  await step("meeting_leave", async () => {
    await client("client.call.leave", "meeting_leave", { leaveReason: "paired-leave" }, join);
    expect("callEnd", "meeting_leave");
    await newMetrics.submitBusinessEvent({
      name: "callEnd", table: "wbxapp_callend_metrics",
      payload: { correlationId, meetingDuration: 1860, participantCount: 4 },
    });
    expect(BEHAVIORAL.UPLOAD_LOGS_SUCCESS, "meeting_leave");
    await webex.meetings.uploadLogs({
      callStart: new Date().toISOString(), correlationId, locusId: uuid(), meetingId: uuid(),
    });
  });

  await step("periodic", async () => {
    await webex.internal.device.refresh();
  });

  await step("shutdown", async () => {
    await webex.internal.device.unregister();
  });

  fs.writeFileSync(OUT, JSON.stringify(truth, null, 1));
}

main().then(() => process.exit(0)).catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
