// guacamole-lite, the peer relay of bench/gateway.py: the same guacd (stand-in) behind it, no recording.
// Usage: node server.js <websocket port> <guacd port> <32-byte AES-256-CBC key>
const GuacamoleLite = require('guacamole-lite');

const [wsPort, guacdPort, key] = process.argv.slice(2);
new GuacamoleLite(
    { host: '127.0.0.1', port: Number(wsPort) },
    { host: '127.0.0.1', port: Number(guacdPort) },
    { crypt: { cypher: 'AES-256-CBC', key }, log: { level: 0 }, maxInactivityTime: 60000 },
);
console.log(`guacamole-lite listening on 127.0.0.1:${wsPort}`);
