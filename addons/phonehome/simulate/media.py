"""Media quality reports of the simulated app: MQE events and rtcMetrics bodies (facts §5, §7)."""

from __future__ import annotations

import json
import random
from typing import Any

from .payloads import APP_VERSION, Env, Item, Live, Mark, ca_item, mask_prefix

__all__ = ["mqe_item", "rtc_body"]


def _stream_common(rng: random.Random, codec: str, bitrate: int) -> dict[str, Any]:
    return {"codec": codec, "csi": [rng.randrange(10**8, 10**9)],
            "rtpPackets": rng.randint(2800, 3100), "transmittedBitrate": bitrate,
            "receivedBitrate": bitrate, "rtpJitter": rng.randint(1, 9),
            "meanRtpJitter": round(rng.uniform(0.5, 6.0), 2),
            "rtpEndToEndLost": rng.randint(0, 4), "concealedFrames": rng.randint(0, 30)}


def _path_common(rng: random.Random, direction: str) -> dict[str, Any]:
    return {"common": {"direction": direction, "isMain": True, "multistreamEnabled": True},
            "rtpPackets": rng.randint(2800, 3100), "rtpBitrate": rng.randint(30000, 64000),
            "mediaHopByHopLost": rng.randint(0, 3), "rtpRecovered": rng.randint(0, 2),
            "maxRemoteJitter": rng.randint(5, 30), "meanRemoteJitter": rng.randint(1, 10),
            "maxRoundTripTime": rng.randint(40, 180), "meanRoundTripTime": rng.randint(20, 90),
            "maxRemoteLossRate": round(rng.uniform(0, 2), 2),
            "availableBitrate": rng.randint(800000, 2500000), "transportType": "UDP"}


def mqe_item(env: Env, live: Live, number: int, now: float) -> Item:
    """`client.mediaquality.event` for one 60 s interval.

    Speech statistics are present while unmuted (normal). While muted they are
    sent only when the `muted_audio` leak is on (background-noise levels, as in
    the PETS 2022 finding); otherwise the muted interval carries no levels.
    The full public IP goes to `peerReflexiveIP` only with `public_ip` on;
    otherwise the /28 masked prefix.
    """
    rng = random.Random(f"{env.seed}:mqe:{number}")
    marks: list[Mark] = []
    base = ("eventPayload", "event", "intervals", 0)
    public = env.on("public_ip")
    if public:
        marks.append(Mark((*base, "intervalMetadata", "peerReflexiveIP"), "public_ip", "plain",
                          "ip", finding_types=("ip_address", "identity_match")))
    audio_tx: dict[str, Any] = {"common": _path_common(rng, "sendrecv"),
                                "streams": [{"common": _stream_common(rng, "opus", 40000)}]}
    levels_allowed = not live.muted or env.on("muted_audio")
    if levels_allowed:
        loud = not live.muted
        volume = rng.randint(38, 72) if loud else rng.randint(4, 15)
        audio_tx["levels"] = {"audioMeanGain": rng.randint(10, 30), "audioMinGain": 0,
                              "audioMaxGain": rng.randint(30, 60), "audioMeanVolume": volume,
                              "audioMinVolume": max(1, volume - rng.randint(1, 4)),
                              "audioMaxVolume": volume + rng.randint(5, 20)}
        audio_tx["streams"][0]["audioAlgorithmModulesInfo"] = {
            "speechRMS": rng.randint(900, 4000) if loud else rng.randint(60, 400),
            "maxSpeechRMS": rng.randint(4000, 9000) if loud else rng.randint(400, 900),
            "avrRMS": rng.randint(300, 1500), "maxRMS": rng.randint(5000, 12000),
            "speechLength": rng.randint(20000, 45000) if loud else rng.randint(500, 4000),
            "speechQuality": rng.randint(60, 95), "noiseTotal": rng.randint(40, 400),
            "vadRetentionOnMute": 0 if loud else rng.randint(1, 30),
        }
        if live.muted:
            tx = (*base, "audioTransmit", 0)
            marks.append(Mark((*tx, "levels", "audioMeanVolume"), "muted_audio", "plain",
                              "audio_level"))
    interval = {
        "intervalNumber": number,
        "networkType": "wifi",
        "intervalMetadata": {
            "peerReflexiveIP": env.identity.ip if public else mask_prefix(env.identity.ip),
            "peripherals": [{"name": "microphone", "information": "MacBook Pro Microphone"},
                            {"name": "camera", "information": "FaceTime HD Camera"},
                            {"name": "speaker", "information": "MacBook Pro Speakers"}],
            "cpuInfo": {"numberOfCores": 10},
            "screenWidth": 3024, "screenHeight": 1964, "screenResolution": 5939136,
            "appWindowWidth": 1512, "appWindowHeight": 945, "appWindowSize": 1428840,
            "processAverageCPU": rng.randint(8, 35),
        },
        "audioTransmit": [audio_tx],
        "audioReceive": [{"common": _path_common(rng, "sendrecv"),
                          "streams": [{"common": _stream_common(rng, "opus", 38000)}]}],
        "videoTransmit": [{"common": _path_common(rng, "sendrecv"),
                           "streams": [{"common": _stream_common(rng, "H264", 1200000),
                                        "transmittedWidth": 1280, "transmittedHeight": 720,
                                        "transmittedKeyFrames": rng.randint(1, 4)}]}],
        "videoReceive": [{"common": _path_common(rng, "sendrecv"),
                          "streams": [{"common": {**_stream_common(rng, "H264", 900000),
                                                  "receivedFrameRate": 30},
                                       "receivedWidth": 1280, "receivedHeight": 720,
                                       "isActiveSpeaker": bool(rng.getrandbits(1))}]}],
    }
    event = {
        "callingServiceType": "LOCUS",
        "meetingJoinInfo": {"clientSignallingProtocol": "WebRTC"},
        "sourceMetadata": {"applicationSoftwareType": "webex-desktop",
                           "applicationSoftwareVersion": APP_VERSION,
                           "mediaEngineSoftwareType": "WME",
                           "mediaEngineSoftwareVersion": "23.10.1.5",
                           "startTime": live.locus_start},
        "intervals": [interval],
    }
    return ca_item(env, live, "client.mediaquality.event", now, event=event, marks=marks)


# --- rtcMetrics (facts §7) --------------------------------------------------


def rtc_body(env: Env, live: Live, number: int, now: float) -> dict[str, Any]:
    """A `stats-report` for unifiedTelemetry /metric/v2; candidate IPs are masked."""
    rng = random.Random(f"{env.seed}:rtc:{number}")
    stamp = now * 1000
    stats = [
        {"type": "local-candidate", "id": "ILc1", "timestamp": stamp,
         "address": mask_prefix(env.local_ip), "ip": mask_prefix(env.local_ip),
         "port": 52000 + number, "protocol": "udp", "candidateType": "host"},
        {"type": "local-candidate", "id": "ILc2", "timestamp": stamp,
         "address": mask_prefix(env.identity.ip), "ip": mask_prefix(env.identity.ip),
         "relatedAddress": mask_prefix(env.local_ip), "port": 52100 + number,
         "protocol": "udp", "candidateType": "srflx"},
        {"type": "remote-candidate", "id": "IRc1", "timestamp": stamp,
         "address": "170.72.231.0", "ip": "170.72.231.0", "port": 5004,
         "protocol": "udp", "candidateType": "host"},
        {"type": "candidate-pair", "id": "CP1", "timestamp": stamp, "state": "succeeded",
         "nominated": True, "currentRoundTripTime": round(rng.uniform(0.02, 0.09), 3),
         "availableOutgoingBitrate": rng.randint(1_000_000, 3_000_000),
         "bytesSent": rng.randint(10**6, 10**8), "bytesReceived": rng.randint(10**6, 10**8)},
        {"type": "inbound-rtp", "id": "IT01A", "timestamp": stamp, "kind": "audio",
         "packetsReceived": rng.randint(1000, 90000), "packetsLost": rng.randint(0, 40),
         "jitter": round(rng.uniform(0.001, 0.02), 4)},
        {"type": "outbound-rtp", "id": "OT01V", "timestamp": stamp, "kind": "video",
         "packetsSent": rng.randint(1000, 90000), "framesPerSecond": 30,
         "frameWidth": 1280, "frameHeight": 720},
    ]
    return {"metrics": [{
        "type": "webrtc",
        "version": "1.1.0",
        "userId": env.user_id,
        "correlationId": live.correlation_id,
        "connectionId": live.connection_id,
        "meetingId": env.sdk_meeting_id,
        "data": [{"name": "stats-report", "payload": [json.dumps(stats)]}],
    }]}
