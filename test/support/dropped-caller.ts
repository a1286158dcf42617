/**
 * A caller in its own process, for a connection that drops rather than hangs up: it joins the room
 * given on the command line (URL and token in the environment), says `joined` on stdout, and waits to
 * be killed. SIGKILL leaves no leave message: the server finds the connection gone, as it does when a
 * phone loses its network.
 */
import { Room } from '@livekit/rtc-node';

const room = new Room();
await room.connect(process.env.LIVEKIT_URL!, process.env.LIVEKIT_TOKEN!, { autoSubscribe: false, dynacast: false });
process.stdout.write('joined\n');
setInterval(() => {}, 60_000);
