"""Autobahn|Python (asyncio) as a user of `chat serve --users FILE` (examples/tests/chat_users.rs).

    python users.py URL TOKEN OWN_ROOM OTHER_ROOM NAME

Signs in with `Authorization: Bearer TOKEN` on the WebSocket handshake (a form the WAMP
door accepts), then checks that every use of OTHER_ROOM (a room the user may not use) is
refused with `wamp.error.not_authorized` — CALL of `Chat.join`, `Chat.say`,
`Chat.messages`, SUBSCRIBE and PUBLISH to `Chat.room.OTHER_ROOM` — and that in OWN_ROOM a
`Chat.say` goes out under NAME, whatever name the client joined with. Prints `ok: <check>`
per check; exits 0 when all pass.
"""

import asyncio
import sys

from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions

URL, TOKEN, OWN, OTHER, NAME = sys.argv[1:6]
outcome = {"ok": False}
REFUSED = "wamp.error.not_authorized"


def ok(name):
    print(f"ok: {name}", flush=True)


async def expect_error(coro, uri):
    try:
        await coro
    except ApplicationError as e:
        assert e.error == uri, (e.error, e.args, e.kwargs)
        return e
    raise AssertionError(f"expected {uri}")


async def checks(s):
    await expect_error(s.call("Chat.join", OTHER, NAME), REFUSED)
    await expect_error(s.call("Chat.join", room=OTHER, name=NAME), REFUSED)
    await expect_error(s.call("Chat.say", OTHER, "let me in"), REFUSED)
    await expect_error(s.call("Chat.close", OTHER), REFUSED)
    await expect_error(
        s.call("Chat.messages", OTHER, options=CallOptions(on_progress=lambda m: None)), REFUSED
    )
    ok(f"CALL join, say, close, messages of {OTHER}: {REFUSED}")

    await expect_error(s.subscribe(lambda m: None, f"Chat.room.{OTHER}"), REFUSED)
    await expect_error(
        s.publish(
            f"Chat.room.{OTHER}",
            {"room": OTHER, "from": "someone else", "text": "published by an outsider"},
            options=PublishOptions(acknowledge=True),
        ),
        REFUSED,
    )
    ok(f"SUBSCRIBE and PUBLISH to Chat.room.{OTHER}: {REFUSED}")

    heard = asyncio.get_running_loop().create_future()

    def on_message(message):
        if not heard.done():
            heard.set_result(message)

    await s.subscribe(on_message, f"Chat.room.{OWN}")
    assert await s.call("Chat.join", OWN, "someone else") >= 1
    await s.call("Chat.say", OWN, "said over WAMP")
    message = await asyncio.wait_for(heard, 20)
    assert message == {"room": OWN, "from": NAME, "text": "said over WAMP"}, message
    ok(f"join and say in {OWN}: the message is from {NAME}")


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
runner = ApplicationRunner(URL, "realm1", headers={"Authorization": f"Bearer {TOKEN}"})
loop.run_until_complete(runner.run(Session, start_loop=False))
loop.run_forever()
sys.exit(0 if outcome["ok"] else 1)
