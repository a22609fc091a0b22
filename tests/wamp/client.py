"""Autobahn|Python (asyncio) against a wirecall server speaking WAMP (tests/tests/wamp.rs).

    python client.py URL [json|msgpack|cbor]

Calls every calculator method, checks typed and protocol errors, cancels a sleep and
times one out, reads progressive results of a stream, then subscribes to the chat room
`lobby`, prints READY, and expects the three messages the test says over JSON-RPC (and
not its own publication). Prints `ok: <check>` per check; exits 0 when all pass.
The second argument picks the serializer it offers (JSON if none): the checks are the
same for each.
"""

import asyncio
import sys
import time

from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import CallOptions, PublishOptions

URL = sys.argv[1]
SERIALIZER = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}[
    sys.argv[2] if len(sys.argv) > 2 else "json"
]()
outcome = {"ok": False}


def ok(name):
    print(f"ok: {name}", flush=True)


async def expect_error(coro, uri, contains=None):
    try:
        await coro
    except ApplicationError as e:
        assert e.error == uri, (e.error, e.args, e.kwargs)
        if contains is not None:
            assert contains in str(e.args), (contains, e.args)
        return e
    raise AssertionError(f"expected {uri}")


async def checks(s):
    assert await s.call("Calculator.add", 1, 2) == 3
    assert await s.call("Calculator.add", a=40, b=2) == 42
    assert await s.call("Calculator.subtract", 42, 23) == 19
    assert await s.call("Calculator.divide", 1, 4) == 0.25
    assert await s.call("Calculator.echo", "héllo") == "héllo"
    assert await s.call("Calculator.sleep", 10) == 10
    assert await s.call("Calculator.log", "from autobahn") is None
    stats = await s.call("Calculator.stats")
    assert stats["last_message"] == "from autobahn" and stats["calls"] >= 7, stats
    ok("every calculator method")

    e = await expect_error(s.call("Calculator.divide", 1, 0), "CalcError.DivideByZero")
    assert list(e.args) == [1001], e.args
    ok("typed error: CalcError.DivideByZero, args [1001]")
    await expect_error(s.call("Calculator.add", "x", 2), "wamp.error.invalid_argument", "invalid parameter")
    await expect_error(s.call("Calculator.nope"), "wamp.error.no_such_procedure")
    await expect_error(s.call("Calculator.add", 1, 2, a=1), "wamp.error.invalid_argument", "not both")
    await expect_error(s.call("Calculator.ask", "sure?"), "wirecall.error.peer_call_failed", "not part of WAMP")
    ok("protocol errors: invalid_argument, no_such_procedure; no server-to-client calls")

    started = time.monotonic()
    call = asyncio.ensure_future(s.call("Calculator.sleep", 5000))
    await asyncio.sleep(0.1)
    call.cancel()
    try:
        await call
        raise AssertionError("the canceled call returned")
    except (asyncio.CancelledError, ApplicationError):
        pass
    assert time.monotonic() - started < 2, "CANCEL did not stop the sleep"
    await expect_error(s.call("Calculator.sleep", 5000, options=CallOptions(timeout=100)), "wamp.error.canceled")
    assert time.monotonic() - started < 3
    ok("CANCEL and the call timeout stop a sleep")

    ticks = []
    final = await s.call("Calculator.ticks", 3, 10, options=CallOptions(on_progress=ticks.append))
    assert ticks == [0, 1, 2] and final is None, (ticks, final)
    await expect_error(s.call("Calculator.ticks", 3, 10), "wamp.error.invalid_argument", "receive_progress")
    ok("a stream as progressive results")

    said = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message):
        said.append(message["text"])
        if len(said) == 3 and not done.done():
            done.set_result(None)

    await s.subscribe(on_message, "Chat.room.lobby")
    await expect_error(s.subscribe(on_message, "Chat.room"), "wamp.error.invalid_uri")
    # Published by this client: the JSON-RPC side receives it; exclude_me keeps it from us.
    await s.publish(
        "Chat.room.lobby",
        {"room": "lobby", "from": "autobahn-python", "text": "hello from WAMP"},
        options=PublishOptions(acknowledge=True),
    )
    await expect_error(
        s.publish("Chat.room.lobby", {"nope": 1}, options=PublishOptions(acknowledge=True)),
        "wamp.error.invalid_argument",
    )
    print("READY", flush=True)
    await asyncio.wait_for(done, 20)
    assert said == ["m1", "m2", "m3"], said
    ok("topic events from JSON-RPC clients, own publication excluded")


class Session(ApplicationSession):
    async def onJoin(self, details):
        try:
            await checks(self)
            outcome["ok"] = True
        except BaseException as e:  # report, then leave
            import traceback

            traceback.print_exc()
            print(f"FAILED: {e!r}", flush=True)
        self.leave()

    def onDisconnect(self):
        asyncio.get_event_loop().stop()


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
runner = ApplicationRunner(URL, "realm1", serializers=[SERIALIZER])
loop.run_until_complete(runner.run(Session, start_loop=False))
loop.run_forever()
sys.exit(0 if outcome["ok"] else 1)
