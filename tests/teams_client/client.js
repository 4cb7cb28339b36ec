// A Teams-like telemetry session sent with Microsoft's published SDKs (1DS
// OneCollector and Application Insights), for phonehome's end-to-end test.
//
//   HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS=ca.pem \
//     node client.js --out truth.json [--identity-email jane@contoso.com]
//
// Event names come from Microsoft's Teams diagnostic-data lists (desktop and
// mobile); each is sent in the step a Teams client would send it, flushed per
// step, and the session ends with an SDK teardown (the unload request shape).
// truth.json says what was sent: every event with the trigger its list entry
// describes, and every personal field planted, with how (tagged or not).
"use strict";

const fs = require("fs");
const crypto = require("crypto");
const { setGlobalDispatcher, ProxyAgent } = require("undici");
const { AppInsightsCore } = require("@microsoft/1ds-core-js");
const { PostChannel } = require("@microsoft/1ds-post-js");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const OUT = arg("out", "truth.json");
const EMAIL = arg("identity-email", "jane.doe@contoso.example");
const NAME = arg("identity-name", "Jane Doe");
const HOST = arg("identity-hostname", "jane-laptop.corp.contoso.example");
const IP = arg("identity-ip", "203.0.113.7");
const PHONE = arg("identity-phone", "+1 425 555 0142");
const TITLE = arg("meeting-title", "Q3 layoffs planning");
const ONE_DS_URL = "https://browser.events.data.microsoft.com/OneCollector/1.0/";
const AI_CONNECTION = "InstrumentationKey=5f2e1a3c-1b6d-4c1e-9a1f-0c2d3e4f5a6b;"
  + "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/";
const TENANT_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90-11111111-2222-3333-4444-555555555555-7000";

// Value kinds from eValueKind (@microsoft/applicationinsights-core-js).
const KIND = { IPV4: 3, PHONE: 6, SMTP: 9, IDENTITY: 10, URI: 11, FQDN: 12, CONTENT: 32 };

const proxy = process.env.HTTPS_PROXY || process.env.https_proxy;
if (proxy) {
  setGlobalDispatcher(new ProxyAgent(proxy));
}

const truth = { events: [], personal: [] };
const sha256 = (text) => crypto.createHash("sha256").update(text).digest("hex");

function plant(event, field, type, how, value) {
  truth.personal.push({ event, field, type, how });
  return value;
}

// Properties sent with every event (desktop list, "Properties sent with all events").
function common(name) {
  return {
    EventInfo_Name: name,
    AppInfo_Version: "24215.1007.3082.1590",
    AppInfo_ClientType: "desktop",
    AppInfo_Language: "en-us",
    DeviceInfo_OsName: "Windows",
    DeviceInfo_OsVersion: "10.0.22631",
    UserInfo_Id: "8:orgid:6b1f0c1e-3f0a-4f4e-9d1e-2b7c9a1d0e11",
    UserInfo_TenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    // "One sided hash of user identifier" (desktop list)
    UserInfo_Upn: plant(name, "UserInfo_Upn", "identity_match", "hashed", sha256(EMAIL)),
    DeviceInfo_Id: "2f4a9c1b7e3d",
    Session_Id: "a6f0b3e2-9c1d-4e7f-8a2b-3c4d5e6f7a8b",
    UserInfo_Ring: "general",
  };
}

const STEPS = [
  ["setup", [["desktop_install", {}], ["appInstall", {}]]],
  ["app_start", [["desktop_app_load", { Scenario_Status: "OK", delta: 2140 }],
                 ["desktop_app_initialized", { appStartReason: "userInitiated" }],
                 ["app_start_cold", { elapsed: 3120 }]]],
  ["sign_in", [["acquire_resource_token_silent", { Scenario_Status: "OK" }],
               ["TfWSignInSuccessful", (n) => ({
                 UserInfo_Email: { value: plant(n, "UserInfo_Email", "email", "tagged", EMAIL),
                                   kind: KIND.SMTP },
               })],
               ["loginSuccess", (n) => ({
                 // the UPN in clear, where the list promises a one-sided hash
                 UserInfo_Upn: plant(n, "UserInfo_Upn", "email", "plain", EMAIL),
               })]]],
  ["meeting_create", [["openNewMeetingForm", {}],
                      ["saveNewMeeting", (n) => ({
                        Module_Summary: { value: plant(n, "Module_Summary", "meeting_title",
                                                       "tagged", TITLE), kind: KIND.CONTENT },
                      })]]],
  ["meeting_join", [["meetingJoinNow", (n) => ({
                      clientIp: { value: plant(n, "clientIp", "ip_address", "tagged", IP),
                                  kind: KIND.IPV4 },
                      Panel_Uri: { value: plant(n, "Panel_Uri", "url", "tagged",
                        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x/0?organizer="
                        + encodeURIComponent(EMAIL)), kind: KIND.URI },
                    })],
                    ["joinMeeting", (n) => ({
                      DeviceInfo_Name: { value: plant(n, "DeviceInfo_Name", "hostname", "tagged",
                                                      HOST), kind: KIND.FQDN },
                    })],
                    ["preJoinDeviceAudio", {}]]],
  ["in_meeting", [["callOrMeetUpMicrophoneSwitch", { Action_Outcome: "mute" }],
                  ["callOrMeetUpVideoSwitch", { Action_Outcome: "on" }],
                  ["callOrMeetUpDeviceAudioSwitch", {}],
                  // "Chat toggle while in live meeting or call"
                  ["callOrMeetUpChatWithParticipants", (n) => ({
                    UserInfo_DisplayName: plant(n, "UserInfo_DisplayName", "person_name",
                                                "plain", NAME),
                    callbackNumber: { value: plant(n, "callbackNumber", "phone", "tagged",
                                                   PHONE), kind: KIND.PHONE },
                  })]]],
  ["screen_share", [["shareScreen", { Action_Outcome: "start" }],
                    ["castScreen", { Action_Outcome: "stop" }]]],
  ["collaboration", [["chatSendMessage", (n) => ({
                       messageText: { value: plant(n, "messageText", "chat_message", "tagged",
                         "Can we move the layoffs list review to Friday? " + NAME),
                                      kind: KIND.CONTENT },
                     })],
                     ["whiteboardUsed", {}]]],
  ["meeting_leave", [["callOrMeetUpCallEnded", { Action_Outcome: "endCall" }]]],
  ["error", [["app_crash2", (n) => ({
               Trace_message: plant(n, "Trace_message", "username", "plain",
                 "TypeError at C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\Teams\\app.js:12"),
             })],
             ["desktop_uncaught_exception", {}]]],
  ["periodic", [["PlayerHeartbeat", { triggerType: "intervalHeartbeat", playedSeconds: 60 }]]],
];
const TEARDOWN = ["shutdown", [["desktop_terminated", {}], ["appKilled", {}]]];

// Sent to Application Insights only ("Only sent to appInsights, not Aria").
const AI_STEPS = [
  ["collaboration", "teamChannelChanged"],
  ["error", "ExceptionData"],
];

function props(name, extra) {
  const own = typeof extra === "function" ? extra(name) : extra;
  return { ...common(name), ...own };
}

function track(core, trigger, name, extra) {
  core.track({
    name,
    iKey: TENANT_KEY,
    data: props(name, extra),
    latency: 1,
  });
  truth.events.push({ name, trigger, pipe: "1ds" });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function flushed(channel) {
  await new Promise((resolve) => {
    channel.flush(true, () => resolve());
  });
  await sleep(150);
}

async function oneDs() {
  const core = new AppInsightsCore();
  const channel = new PostChannel();
  core.initialize({
    instrumentationKey: TENANT_KEY,
    endpointUrl: ONE_DS_URL,
    extensions: [channel],
    extensionConfig: { [channel.identifier]: { eventsLimitInMem: 500 } },
    featureOptIn: { zipPayload: { mode: 3 } },  // gzip is opt-in: opted in here
  }, []);
  for (const [trigger, events] of STEPS) {
    for (const [name, extra] of events) {
      track(core, trigger, name, extra);
    }
    await flushed(channel);
  }
  // teardown: the SDK sends what is left with the unload shape
  const [trigger, events] = TEARDOWN;
  for (const [name, extra] of events) {
    track(core, trigger, name, extra);
  }
  await new Promise((resolve) => core.unload(false, () => resolve()));
  await sleep(300);
}

async function appInsights() {
  const { ApplicationInsights } = require("@microsoft/applicationinsights-web");
  const ai = new ApplicationInsights({
    config: {
      connectionString: AI_CONNECTION,
      disableAjaxTracking: true,
      disableFetchTracking: true,
      disableExceptionTracking: true,
      disableCookiesUsage: true,
      maxBatchInterval: 100,
      disableIkeyDeprecationMessage: true,
    },
  });
  ai.loadAppInsights();
  // the context tags a signed-in web client carries (the Node SDK sets none by itself)
  const authUser = plant("teamChannelChanged", "ai.user.authUserId", "email", "plain", EMAIL);
  plant("ExceptionData", "ai.user.authUserId", "email", "plain", EMAIL);
  ai.addTelemetryInitializer((item) => {
    item.tags = item.tags || {};
    item.tags["ai.user.authUserId"] = authUser;
    item.tags["ai.session.id"] = "Hk3pQ";
    item.tags["ai.device.id"] = "browser";
  });
  for (const [trigger, name] of AI_STEPS) {
    if (name === "ExceptionData") {
      ai.trackException({ exception: new Error("render failed for " + EMAIL) });
      plant(name, "message", "email", "plain", EMAIL);
    } else {
      ai.trackEvent({ name }, { Panel_Type: "plans", Action_Scenario: name });
    }
    truth.events.push({ name, trigger, pipe: "ai" });
    ai.flush();
    await sleep(300);
  }
  await new Promise((resolve) => ai.unload(false, () => resolve()));
}

async function main() {
  await oneDs();
  await appInsights();
  await sleep(300);
  fs.writeFileSync(OUT, JSON.stringify(truth, null, 1));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
