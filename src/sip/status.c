/* status.c: the table of SIP response codes (RFC 3261 21 plus registered extensions) and lookups over it. */
#include "sip/status.h"

#include <errno.h>
#include <stdint.h>

/*
 * One entry per code, sorted by code (the unit test checks the order; sip_status_find looks codes up by index).
 * reason is the phrase the defining RFC gives, byte for byte. headers names the header fields the
 * response must or should carry, comma-separated, "" if none. en and zh are our own words.
 */
static const struct sip_status status_table[] = {
	/* 1xx Provisional (RFC 3261 21.1) */
	{ 100, "Trying", "RFC 3261 21.1.1", "",
	  "The next hop has the request and is working on it; an INVITE client stops retransmitting. A stateful proxy sends its own 100 and never forwards one upstream. sipd sends it to an INVITE at once, and to any other request only when still unanswered as the client's Timer E reaches T2 (3.5 s; RFC 4320).",
	  "下一跳已收到请求，正在处理，INVITE 的客户端据此停止重传。有状态代理会自己发送 100，但从不把收到的 100 往上游转发。sipd 对 INVITE 立即发送；对其他请求，只有当客户端的 Timer E 增长到 T2（3.5 秒）时仍未应答才发送（RFC 4320），不会更早。" },
	{ 180, "Ringing", "RFC 3261 21.1.2", "",
	  "The callee's user agent has the INVITE and is alerting the user. The caller usually plays local ringback unless early media arrives.",
	  "被叫的用户代理已收到 INVITE，正在提醒用户（振铃）。主叫通常据此播放本地回铃音，除非收到了早期媒体。" },
	{ 181, "Call Is Being Forwarded", "RFC 3261 21.1.3", "",
	  "A server tells the caller that the call is being forwarded to a different set of destinations. It is informational only; the caller keeps waiting for the final response.",
	  "服务器告诉主叫：呼叫正在被转到另一组目的地。这只是提示，主叫继续等待最终响应。" },
	{ 182, "Queued", "RFC 3261 21.1.4", "",
	  "The callee is temporarily unavailable and the server has queued the call instead of rejecting it; the final response follows once the callee is free. The reason phrase may give the queue position and expected wait, and several 182s may update it.",
	  "被叫暂时无法接听，服务器没有拒绝，而是把呼叫放进队列，等被叫空闲后再给出最终响应。原因短语可以写明排队位置和预计等待时间，服务器也可以多次发送 182 更新进度。" },
	{ 183, "Session Progress", "RFC 3261 21.1.5", "",
	  "Conveys progress of the call setup that no other provisional code describes. The reason phrase, header fields or body (often SDP for early media) carry the details.",
	  "用来传递呼叫建立过程中的进展，这些信息没有更合适的临时响应码可用。细节放在原因短语、头域或消息体里（常见的是承载早期媒体的 SDP）。" },
	{ 199, "Early Dialog Terminated", "RFC 6228", "",
	  "A forking proxy or a UAS reports that one early dialog has ended before the final response is sent, so the UAC can free what it holds for that dialog. It is meant for UACs that list the 199 option tag in Supported.",
	  "分叉代理或 UAS 在最终响应之前告诉上游：某个早期对话已经结束，UAC 可以释放为它占用的资源。只用于在 Supported 中声明了 199 选项标签的 UAC。" },

	/* 2xx Success (RFC 3261 21.2) */
	{ 200, "OK", "RFC 3261 21.2.1", "",
	  "The request succeeded; what the response carries depends on the method. A REGISTER's 200 lists every current binding in Contact, an OPTIONS 200 advertises Allow, Accept and Supported, and a 200 to INVITE is acknowledged with ACK.",
	  "请求成功，响应携带的内容随方法而定：REGISTER 的 200 在 Contact 里列出全部现有绑定，OPTIONS 的 200 用 Allow、Accept、Supported 声明能力，INVITE 的 200 要由对方回 ACK 确认。" },
	{ 202, "Accepted", "RFC 3265 (deprecated by RFC 6665)", "Expires",
	  "RFC 3265 used it to accept a SUBSCRIBE whose authorization was still pending, and REFER (RFC 3515) is still commonly answered with it. RFC 6665 deprecates it in favour of 200, but a receiver must still treat it as success.",
	  "RFC 3265 用它接受授权尚未确定的 SUBSCRIBE，REFER（RFC 3515）至今也常用 202 应答。RFC 6665 已将其废弃、改用 200，但接收方仍须把它当作成功处理。" },
	{ 204, "No Notification", "RFC 5839", "Expires",
	  "The notifier accepts a conditional SUBSCRIBE refresh (entity tags) and, because the state has not changed, will not send the NOTIFY that would otherwise follow. The subscriber keeps the state it already has.",
	  "通知方接受带实体标签的条件式 SUBSCRIBE 刷新；由于状态没有变化，本该随后发送的 NOTIFY 不再发送，订阅方沿用手里已有的状态。" },

	/* 3xx Redirection (RFC 3261 21.3) */
	{ 300, "Multiple Choices", "RFC 3261 21.3.1", "Contact",
	  "The address resolved to several locations, listed in Contact with q and expires parameters; the client may try them itself or let the user choose. sipd sends it in redirect mode when a target has several destinations.",
	  "该地址对应多个位置，全部列在 Contact 中（可带 q 和 expires 参数），客户端可以自己逐个尝试，也可以交给用户选择。sipd 在重定向模式下、目标有多个去处时发送它。" },
	{ 301, "Moved Permanently", "RFC 3261 21.3.2", "Contact",
	  "The user is no longer at the Request-URI. The client retries at the address in Contact and should update address books and caches so later requests go there directly.",
	  "用户已不在 Request-URI 所指的地址。客户端应改用 Contact 中的新地址重试，并更新通讯录和缓存，以后的请求直接发往新地址。" },
	{ 302, "Moved Temporarily", "RFC 3261 21.3.3", "Contact",
	  "The client retries with the Contact address as the new Request-URI. The Contact's expires parameter or an Expires header says how long the redirection may be cached; without either it holds for this request only.",
	  "客户端应以 Contact 中的地址作为新的 Request-URI 重新发起请求。Contact 的 expires 参数或 Expires 头域说明这个地址能缓存多久；两者都没有时，只对本次请求有效。" },
	{ 305, "Use Proxy", "RFC 3261 21.3.4", "Contact",
	  "The resource must be reached through the proxy named in Contact; the recipient repeats this one request through that proxy. Only a UAS may generate it.",
	  "必须经 Contact 中指定的代理才能访问该资源，接收方应通过这个代理重发本次请求（只限这一次）。305 只能由 UAS 生成。" },
	{ 380, "Alternative Service", "RFC 3261 21.3.5", "",
	  "The call did not succeed as asked, but an alternative service may serve it. The body describes that service, in a format RFC 3261 leaves open.",
	  "呼叫没能按原样完成，但也许可以改用另一项服务。消息体描述这项替代服务，其格式 RFC 3261 没有规定。" },

	/* 4xx Client Error (RFC 3261 21.4) */
	{ 400, "Bad Request", "RFC 3261 21.4.1", "",
	  "The request is malformed. The reason phrase should name the defect, e.g. \"Missing Call-ID header field\"; the client must fix the request before retrying.",
	  "请求的语法有误。原因短语应当指出具体问题，例如 \"Missing Call-ID header field\"；客户端必须先改正请求才能重试。" },
	{ 401, "Unauthorized", "RFC 3261 21.4.2", "WWW-Authenticate",
	  "The request needs user authentication; UASs and registrars send it, proxies send 407 instead. The client answers the challenge and resends with an Authorization header.",
	  "请求需要用户认证，由 UAS 和注册服务器发送（代理则用 407）。客户端根据质询计算凭据，带上 Authorization 头域重新发送。" },
	{ 402, "Payment Required", "RFC 3261 21.4.3", "",
	  "Reserved for future use; no behaviour is defined for it. A receiver handles it like any other 4xx failure.",
	  "留待将来使用，目前没有定义任何行为。接收方按普通的 4xx 失败处理。" },
	{ 403, "Forbidden", "RFC 3261 21.4.4", "",
	  "The server understood the request but refuses it; credentials will not help and the request should not be repeated. sipd sends it, for instance, to a REGISTER for someone else's address of record or a relay request for a foreign domain.",
	  "服务器理解这个请求，但拒绝执行；提供认证信息也没有用，不应重复发送。sipd 会在替他人的 AOR 注册、为外域中继请求等情况下返回 403。" },
	{ 404, "Not Found", "RFC 3261 21.4.5", "",
	  "The user does not exist in the domain of the Request-URI, or that domain is not one this server serves. It is this server's definitive answer.",
	  "Request-URI 所在的域里没有这个用户，或者这个域不归本服务器管。这是本服务器给出的确定答复。" },
	{ 405, "Method Not Allowed", "RFC 3261 21.4.6", "Allow",
	  "The server knows the method but does not allow it for this Request-URI. The response must list the methods that are allowed in Allow.",
	  "服务器认识这个方法，但不允许对该 Request-URI 使用。响应必须在 Allow 头域中列出允许的方法。" },
	{ 406, "Not Acceptable", "RFC 3261 21.4.7", "",
	  "The resource can only produce content that the request's Accept header rules out. The client may retry accepting more content types.",
	  "所请求的资源只能生成请求的 Accept 头域不接受的内容。客户端可以放宽 Accept 后重试。" },
	{ 407, "Proxy Authentication Required", "RFC 3261 21.4.8", "Proxy-Authenticate",
	  "Like 401, but the client must first authenticate to a proxy on the path and resend with Proxy-Authorization. A forking proxy merges the 401/407 challenges of all its branches into one response.",
	  "与 401 类似，但客户端要先向路径上的代理认证，带上 Proxy-Authorization 头域重新发送。分叉代理会把各分支的 401/407 质询合并到一个响应里。" },
	{ 408, "Request Timeout", "RFC 3261 21.4.9", "",
	  "The server could not produce a final response in time, e.g. it could not locate the user, or no branch answered before Timer C or the request's Expires ran out. The client may send the same request again later. Never sent to a non-INVITE request, nor relayed to one (RFC 4320): its client has given up by then, so sipd sends nothing.",
	  "服务器没能及时给出最终响应，例如找不到用户的位置，或者在 Timer C 或请求的 Expires 到期前没有任何分支应答。客户端可以稍后原样再发。不对非 INVITE 请求发送，也不转发（RFC 4320）：那时客户端已经放弃，sipd 不发任何响应。" },
	{ 410, "Gone", "RFC 3261 21.4.10", "",
	  "The resource used to exist here but is gone for good, and no forwarding address is known. A server that cannot tell whether the condition is permanent sends 404 instead.",
	  "该资源曾经在这里，但已永久消失，也不知道该转到哪里。如果无法判断是不是永久性的，服务器应改发 404。" },
	{ 412, "Conditional Request Failed", "RFC 3903", "",
	  "A PUBLISH carried a SIP-If-Match entity tag that the event state compositor no longer knows (the publication expired or never existed). The publisher starts over with an initial PUBLISH without SIP-If-Match.",
	  "PUBLISH 携带的 SIP-If-Match 实体标签已不被事件状态合成器识别（对应的发布已过期或根本不存在）。发布方应去掉 SIP-If-Match，重新发一个初始 PUBLISH。" },
	{ 413, "Request Entity Too Large", "RFC 3261 21.4.11", "Retry-After",
	  "The body is larger than the server is willing or able to process. The server may close the connection so the client does not resend; if the condition is temporary it adds Retry-After.",
	  "消息体超出了服务器愿意或能够处理的大小。服务器可以关闭连接，避免客户端重发；如果只是暂时情况，应加上 Retry-After 告知何时可以重试。" },
	{ 414, "Request-URI Too Long", "RFC 3261 21.4.12", "",
	  "The server refuses the request because its Request-URI is longer than it is willing to interpret. The client needs a shorter URI.",
	  "Request-URI 超出了服务器愿意解析的长度，请求被拒绝。客户端需要换用更短的 URI。" },
	{ 415, "Unsupported Media Type", "RFC 3261 21.4.13", "Accept, Accept-Encoding, Accept-Language",
	  "The body's format, encoding or language is not supported. Depending on the cause, the response lists what is acceptable in Accept, Accept-Encoding or Accept-Language, and the client retries within those limits (RFC 3261 8.1.3.5).",
	  "服务器不支持消息体的格式、编码或语言。响应根据具体原因在 Accept、Accept-Encoding 或 Accept-Language 中列出可接受的取值，客户端在这个范围内重发（RFC 3261 8.1.3.5）。" },
	{ 416, "Unsupported URI Scheme", "RFC 3261 21.4.14", "",
	  "The server does not support the scheme of the Request-URI. The client may retry with another scheme if it has one (RFC 3261 8.1.3.5).",
	  "服务器不支持 Request-URI 使用的 URI 方案。客户端如果有别的方案可用，可以换用后重试（RFC 3261 8.1.3.5）。" },
	{ 417, "Unknown Resource-Priority", "RFC 4412", "Accept-Resource-Priority",
	  "The request required resource priority, but its Resource-Priority header names a namespace or priority value the server does not understand. Accept-Resource-Priority lists the values the server supports.",
	  "请求要求资源优先级处理，但 Resource-Priority 头域中的命名空间或优先级取值服务器不认识。Accept-Resource-Priority 列出了服务器支持的取值。" },
	{ 420, "Bad Extension", "RFC 3261 21.4.15", "Unsupported",
	  "The server does not understand an option tag listed in Proxy-Require or Require. It must name every unsupported tag in Unsupported, and the client retries without those extensions (RFC 3261 8.1.3.5).",
	  "服务器不认识 Proxy-Require 或 Require 中的某个选项标签，必须在 Unsupported 头域中逐一列出。客户端应去掉这些扩展后重试（RFC 3261 8.1.3.5）。" },
	{ 421, "Extension Required", "RFC 3261 21.4.16", "Require",
	  "The UAS needs an extension that the request did not list in Supported, and names it in Require. A server should use it only when it truly cannot serve the client with baseline SIP.",
	  "UAS 处理该请求需要某个扩展，而请求的 Supported 中没有列出，响应在 Require 头域中写明所需扩展。只有确实无法用基本 SIP 为客户端服务时才应使用。" },
	{ 422, "Session Interval Too Small", "RFC 4028 6", "Min-SE",
	  "The Session-Expires interval in the request is below the minimum the server accepts. The response carries Min-SE, and the client retries with a Session-Expires at least that large.",
	  "请求中 Session-Expires 给出的会话刷新间隔低于服务器接受的下限。响应携带 Min-SE，客户端应把 Session-Expires 调到不小于这个值再重试。" },
	{ 423, "Interval Too Brief", "RFC 3261 21.4.17", "Min-Expires",
	  "The expiry asked for, e.g. a REGISTER binding's expires, is shorter than the server allows. The response carries Min-Expires and the client retries with at least that value (RFC 3261 10.2.8).",
	  "请求的有效期（例如 REGISTER 绑定的 expires）短于服务器允许的最小值。响应携带 Min-Expires，客户端应改用不小于该值的有效期重试（RFC 3261 10.2.8）。" },
	{ 424, "Bad Location Information", "RFC 6442", "Geolocation-Error",
	  "The location conveyed in the request (Geolocation header or location body) is malformed or unsuitable for routing. Geolocation-Error says what was wrong so the UAC can correct it and resend.",
	  "请求中传递的位置信息（Geolocation 头域或位置消息体）格式有误或无法用于路由。Geolocation-Error 头域说明问题所在，UAC 可以据此改正后重发。" },
	{ 428, "Use Identity Header", "RFC 8224", "",
	  "The server requires an Identity header (STIR signature) and the request had none. The caller's domain should sign the request and send it again.",
	  "服务器要求请求带有 Identity 头域（STIR 身份签名），而该请求没有。主叫所在的域应对请求签名后重新发送。" },
	{ 429, "Provide Referrer Identity", "RFC 3892", "",
	  "The refer target insists on a signed Referred-By token and the request triggered by a REFER carried none. The referee reports this to the referrer, which may supply one.",
	  "被转接的目标要求带有签名的 Referred-By 令牌，而由 REFER 触发的请求没有提供。被转方把情况告知转接发起方，由后者提供令牌。" },
	{ 430, "Flow Failed", "RFC 5626", "",
	  "An edge proxy could not deliver the request over the outbound flow its route names, because the connection to the UA is gone. The authoritative proxy treats that binding as dead and tries the user's other flows; the 430 itself is normally not passed on to the UAC.",
	  "边缘代理无法通过路由指定的 outbound 流投递请求，因为到 UA 的连接已经断开。权威代理应视该绑定为失效，改试用户的其他流；430 本身一般不转给 UAC。" },
	{ 433, "Anonymity Disallowed", "RFC 5079", "",
	  "The server refuses requests from anonymous callers, e.g. an anonymous From with no asserted identity. The caller may try again without hiding its identity.",
	  "服务器拒绝匿名呼叫，例如 From 为匿名且没有可信身份的请求。主叫可以取消匿名后再试。" },
	{ 436, "Bad Identity Info", "RFC 8224", "",
	  "The verifier cannot dereference the info parameter of the Identity header, e.g. the certificate cannot be fetched or its URI scheme is unsupported. The signature therefore cannot be checked.",
	  "验证方无法取得 Identity 头域 info 参数所指的证书，例如下载失败或 URI 方案不受支持，因此无法校验签名。" },
	{ 437, "Unsupported Credential", "RFC 8224", "",
	  "The verifier obtained the signer's credential but cannot use it, e.g. it does not trust the issuer or does not support the credential type.",
	  "验证方拿到了签名者的证书，但无法使用它，例如不信任颁发机构，或者不支持这种证书类型。" },
	{ 438, "Invalid Identity Header", "RFC 8224", "",
	  "The signature in the Identity header does not verify against the request: fields were altered, the key does not match, or the Date is too old. The request is refused as unauthenticated.",
	  "Identity 头域中的签名与请求对不上：字段被改动、密钥不匹配或 Date 过旧。请求被当作身份未经验证而拒绝。" },
	{ 439, "First Hop Lacks Outbound Support", "RFC 5626", "",
	  "The registrar supports outbound, but the first-hop edge proxy does not, so a REGISTER with reg-id cannot set up a flow. The UA may register again without outbound.",
	  "注册服务器支持 outbound，但第一跳边缘代理不支持，带 reg-id 的 REGISTER 因此无法建立流。UA 可以不用 outbound 重新注册。" },
	{ 440, "Max-Breadth Exceeded", "RFC 5393", "",
	  "Forking the request further would exceed the breadth its Max-Breadth header allows, so no branch could be created. The limit guards against amplification through forking loops.",
	  "按照请求中 Max-Breadth 的限制，已不能再分叉出新的分支，请求因此失败。这个限制用来防止分叉环路造成的流量放大。" },
	{ 469, "Bad Info Package", "RFC 6086", "Recv-Info",
	  "An INFO request used an Info Package the receiver never said it would accept. The response lists the packages it does accept in Recv-Info; the dialog itself is unaffected.",
	  "INFO 请求使用的 Info Package 不在接收方声明愿意接收的范围内。响应在 Recv-Info 中列出可接收的包，对话本身不受影响。" },
	{ 470, "Consent Needed", "RFC 5360", "Permission-Missing",
	  "A relay such as a list server will not forward to some targets because they have not agreed to receive traffic from this sender. Permission-Missing lists those URIs so the sender can ask for permission.",
	  "中继（例如列表服务器）因为部分目标还没有同意接收该发送方的流量而不予转发。Permission-Missing 列出这些 URI，发送方可以据此去征求许可。" },
	{ 480, "Temporarily Unavailable", "RFC 3261 21.4.18", "Retry-After",
	  "The callee's system was reached but the user is not available right now (not logged in, do-not-disturb, or no live binding). Retry-After may say when to try again and the reason phrase may say why; the user may be reachable elsewhere.",
	  "已经联系到被叫所在的系统，但用户眼下无法接通（未登录、设了免打扰或没有有效绑定）。可以用 Retry-After 建议重试时间，用原因短语说明原因；用户也许在别处可达。" },
	{ 481, "Call/Transaction Does Not Exist", "RFC 3261 21.4.19", "",
	  "The UAS received a request that matches no existing dialog or transaction, e.g. a BYE for a call that has ended or a CANCEL for an unknown INVITE.",
	  "UAS 收到的请求与任何现有的对话或事务都对不上，例如针对已结束通话的 BYE，或针对未知 INVITE 的 CANCEL。" },
	{ 482, "Loop Detected", "RFC 3261 21.4.20", "",
	  "A proxy sees the request come back to it with nothing changed that would affect routing, so forwarding it again would loop (RFC 3261 16.3).",
	  "代理发现请求又绕回了自己，而且影响路由的字段都没有变化，再转发就会形成环路（RFC 3261 16.3）。" },
	{ 483, "Too Many Hops", "RFC 3261 21.4.21", "",
	  "The request arrived with Max-Forwards at 0 but needed forwarding further. It usually points to a routing loop or an unreasonably long path.",
	  "请求到达时 Max-Forwards 已经是 0，却还需要继续转发。这通常意味着存在路由环路或者路径过长。" },
	{ 484, "Address Incomplete", "RFC 3261 21.4.22", "",
	  "The Request-URI is incomplete, e.g. the dialled digits are only the start of a longer number. In overlap dialling the client sends ever longer strings until it stops getting 484.",
	  "Request-URI 不完整，例如拨出的号码只是某个更长号码的开头。在重叠拨号中，客户端不断补发更长的号码串，直到不再收到 484 为止。" },
	{ 485, "Ambiguous", "RFC 3261 21.4.23", "Contact",
	  "The Request-URI matches several users; the response may list candidates in Contact for a person to choose from. Because the list can reveal private data, a server must be configurable to send 404 instead.",
	  "Request-URI 同时对应多个用户，响应可以在 Contact 中列出候选地址，由人来挑选。由于列表可能泄露隐私，服务器必须能配置成改发 404。" },
	{ 486, "Busy Here", "RFC 3261 21.4.24", "Retry-After",
	  "The callee's end system was reached but cannot or will not take another call on it now. Retry-After may suggest a better time; the user may be reachable elsewhere, e.g. voicemail, and when nothing else can take the call 600 is used instead.",
	  "已经联系到被叫的终端，但此刻在这台设备上无法或不愿再接听。可以用 Retry-After 建议稍后再拨；用户可能在别处（例如语音信箱）可达，如果确知别处也接不了，应改用 600。" },
	{ 487, "Request Terminated", "RFC 3261 21.4.25", "",
	  "The request was ended by a CANCEL (or BYE) before it completed. It is the final response to the cancelled INVITE, never the answer to the CANCEL itself.",
	  "请求在完成之前被 CANCEL（或 BYE）终止。它是对被取消的 INVITE 的最终响应，绝不用来应答 CANCEL 本身。" },
	{ 488, "Not Acceptable Here", "RFC 3261 21.4.26", "Warning",
	  "Like 606, but only this target rejects the session description; others may accept it. A Warning should say why, and a body may describe the media this target supports.",
	  "含义与 606 相同，但只是这个目标不接受会话描述，换个地方也许可以。应在 Warning 中说明原因，消息体可以描述本目标支持的媒体能力。" },
	{ 489, "Bad Event", "RFC 6665", "Allow-Events",
	  "The receiver does not understand the event package named in the Event header of a SUBSCRIBE, NOTIFY or PUBLISH. Allow-Events lists the packages it does support.",
	  "接收方不认识 SUBSCRIBE、NOTIFY 或 PUBLISH 请求 Event 头域中的事件包。Allow-Events 列出了它支持的事件包。" },
	{ 491, "Request Pending", "RFC 3261 21.4.27", "",
	  "The UAS received a request within a dialog while a request of its own that depends on the same state, such as a re-INVITE, is still pending (glare). The client waits a random time and retries (RFC 3261 14.1).",
	  "对话中 UAS 自己发起的、涉及同一状态的请求（例如 re-INVITE）还没有完成，又收到了对方的请求（双方撞车）。客户端等待一段随机时间后重试（RFC 3261 14.1）。" },
	{ 493, "Undecipherable", "RFC 3261 21.4.28", "",
	  "The request carried an encrypted S/MIME body that the UAS cannot decrypt with any key it holds. The response may include a body with the UAS's public key for the sender to use (RFC 3261 23.2).",
	  "请求中的 S/MIME 加密消息体无法用 UAS 持有的任何密钥解开。响应可以附带一个含有 UAS 公钥的消息体，供发送方加密时使用（RFC 3261 23.2）。" },
	{ 494, "Security Agreement Required", "RFC 3329", "Security-Server",
	  "The server insists on agreeing a security mechanism before going further. Security-Server lists the mechanisms it offers; the client picks one and resends with Security-Verify.",
	  "服务器要求先协商好安全机制才肯继续。Security-Server 列出服务器提供的机制，客户端选定一种后带上 Security-Verify 重新发送。" },

	/* 5xx Server Error (RFC 3261 21.5) */
	{ 500, "Server Internal Error", "RFC 3261 21.5.1", "Retry-After",
	  "The server hit an unexpected condition and could not fulfil the request. If the condition is temporary, Retry-After says when the client may try again.",
	  "服务器遇到意外情况，无法完成请求。如果只是暂时故障，可用 Retry-After 告诉客户端多久以后再试。" },
	{ 501, "Not Implemented", "RFC 3261 21.5.2", "",
	  "The server does not support the method at all, for any user; a proxy forwards unknown methods instead of answering 501. Compare 405, where the method is known but not allowed for the Request-URI.",
	  "服务器根本不支持该方法，对哪个用户都一样；代理遇到未知方法会照常转发，而不是回 501。与 405 不同，405 表示方法已知、但对该 Request-URI 不允许。" },
	{ 502, "Bad Gateway", "RFC 3261 21.5.3", "",
	  "A proxy or gateway got an invalid response from a downstream server it contacted to fulfil the request.",
	  "作为代理或网关的服务器，从为完成请求而联系的下游服务器那里收到了无效的响应。" },
	{ 503, "Service Unavailable", "RFC 3261 21.5.4", "Retry-After",
	  "The server is temporarily overloaded or down for maintenance. A client or proxy tries another server and sends nothing more to this one for the Retry-After period; without Retry-After the response is handled as a 500.",
	  "服务器因暂时过载或正在维护而无法提供服务。客户端或代理应改试其他服务器，并在 Retry-After 指定的时间内不再向它发送请求；没有 Retry-After 时按 500 处理。" },
	{ 504, "Server Time-out", "RFC 3261 21.5.5", "",
	  "The server did not get a timely answer from an external server it needed, such as another proxy, DNS or a database. If instead the request's own Expires ran out, the right code is 408.",
	  "服务器在等待所需的外部服务器（其他代理、DNS、数据库等）时超时。如果是请求自身的 Expires 到期，应使用 408。" },
	{ 505, "Version Not Supported", "RFC 3261 21.5.6", "",
	  "The server does not support the SIP version used in the request; for sipd that is anything other than SIP/2.0.",
	  "服务器不支持请求所用的 SIP 协议版本；对 sipd 来说，即 SIP/2.0 以外的任何版本。" },
	{ 513, "Message Too Large", "RFC 3261 21.5.7", "",
	  "The server cannot process the request because the message is longer than it can handle.",
	  "消息长度超出了服务器的处理能力，请求无法处理。" },
	{ 555, "Push Notification Service Not Supported", "RFC 8599", "",
	  "A REGISTER asked for push notifications through a service, named in the pn-provider URI parameter, that the proxy does not support. The UA may register without push or pick another service.",
	  "REGISTER 通过 pn-provider URI 参数指定的推送通知服务不被代理支持。UA 可以不用推送，或改用其他推送服务重新注册。" },
	{ 580, "Precondition Failure", "RFC 3312", "",
	  "The UAS cannot or will not meet the preconditions, such as QoS, required by the offer, so the session is not set up. The body may describe which preconditions failed.",
	  "UAS 无法或不愿满足 offer 中要求的前提条件（例如 QoS），会话因此无法建立。消息体可以说明哪些条件未能满足。" },

	/* 6xx Global Failure (RFC 3261 21.6) */
	{ 600, "Busy Everywhere", "RFC 3261 21.6.1", "Retry-After",
	  "The callee was reached and is busy, and it is known that no other endpoint such as voicemail will take the call; otherwise 486 is used. Retry-After may suggest a time, and like every 6xx it ends a proxy's search.",
	  "已经联系到被叫，被叫正忙，而且确知没有其他终端（如语音信箱）会接这个呼叫，否则应使用 486。可以用 Retry-After 建议重拨时间；和所有 6xx 一样，它会终止代理的继续查找。" },
	{ 603, "Decline", "RFC 3261 21.6.2", "Retry-After",
	  "The callee's device was reached but the user explicitly does not wish to, or cannot, take part. Retry-After may suggest a better time; a proxy stops forking and cancels its pending branches.",
	  "已经联系到被叫的设备，但用户明确表示不愿或不能参与。可以用 Retry-After 建议更合适的时间；代理收到后停止分叉，并取消其余尚未应答的分支。" },
	{ 604, "Does Not Exist Anywhere", "RFC 3261 21.6.3", "",
	  "The server has authoritative information that the user in the Request-URI does not exist anywhere. The caller should not try elsewhere.",
	  "服务器有权威信息表明，Request-URI 中的用户在任何地方都不存在。主叫不必再去别处尝试。" },
	{ 606, "Not Acceptable", "RFC 3261 21.6.4", "Warning",
	  "The user agent was reached, but some aspect of the session description (media, bandwidth, addressing) is not acceptable anywhere. Warning lists the reasons, and a body may describe acceptable media.",
	  "已经联系到用户代理，但会话描述的某些方面（媒体类型、带宽、地址形式等）在哪里都无法接受。Warning 列出原因，消息体可以描述可接受的媒体能力。" },
	{ 607, "Unwanted", "RFC 8197", "",
	  "The called party marks the call as unwanted, e.g. spam or a robocall. Networks may feed this into their call filtering; as a 6xx it ends the search for the callee.",
	  "被叫把这通来电标记为不想接的电话，例如骚扰电话或自动拨号电话。运营网络可以据此改进来电过滤；作为 6xx，它会终止对被叫的继续查找。" },
	{ 608, "Rejected", "RFC 8688", "Call-Info",
	  "An intermediary such as a call-analytics service, not the callee, rejected the call. Call-Info may point to a jCard naming who rejected it, so a wrongly blocked caller can seek redress.",
	  "拒绝这通呼叫的是中间网络实体（例如呼叫分析服务），而不是被叫本人。Call-Info 可以指向一个 jCard，说明是谁拒绝的，方便被误拦的主叫申诉。" },
};

#define STATUS_COUNT (sizeof(status_table) / sizeof(status_table[0]))

static const char *const class_names[] = {
	"Provisional", "Success", "Redirection", "Client Error", "Server Error", "Global Failure",
};

/* By code - 100: the code's index in status_table plus one, 0 for a code it does not hold. Built once,
 * before main: every response sipd writes looks its reason phrase up (a binary search cost about 100
 * instructions). */
static uint8_t status_at[600];
_Static_assert(STATUS_COUNT < 255, "status_at holds an index + 1 in a byte");

__attribute__((constructor)) static void status_at_build(void)
{
	for (size_t i = 0; i < STATUS_COUNT; i++)
		if (status_table[i].code >= 100 && status_table[i].code < 700)
			status_at[status_table[i].code - 100] = (uint8_t)(i + 1);
}

const struct sip_status *sip_status_find(unsigned code)
{
	unsigned at = code >= 100 && code < 700 ? status_at[code - 100] : 0;

	return at ? &status_table[at - 1] : NULL;
}

const struct sip_status *sip_status_lookup(unsigned code)
{
	const struct sip_status *st;

	if (!sip_status_class(code))
		return NULL;
	st = sip_status_find(code);
	if (st)
		return st;
	/* RFC 3261 8.1.3.2: an unrecognised final code counts as the x00 of its class, an unrecognised
	 * provisional one as 183 Session Progress (not 100, which ends at the next hop) */
	return sip_status_find(sip_status_class(code) == 1 ? 183 : sip_status_class(code) * 100);
}

const char *sip_status_reason(unsigned code)
{
	const struct sip_status *st = sip_status_lookup(code);

	return st ? st->reason : "Unknown";
}

unsigned sip_status_class(unsigned code)
{
	if (code < 100 || code > 699)
		return 0;
	return code / 100;
}

const char *sip_status_class_name(unsigned code)
{
	unsigned cls = sip_status_class(code);

	return cls ? class_names[cls - 1] : "Unknown";
}

const struct sip_status *sip_status_all(size_t *n)
{
	if (n)
		*n = STATUS_COUNT;
	return status_table;
}

static void status_print(FILE *f, const struct sip_status *st)
{
	fprintf(f, "%u %s  (%uxx %s; %s)\n", st->code, st->reason, sip_status_class(st->code),
		sip_status_class_name(st->code), st->rfc);
	fprintf(f, "Headers: %s\n", st->headers[0] ? st->headers : "-");
	fprintf(f, "EN: %s\n", st->en);
	fprintf(f, "ZH: %s\n", st->zh);
}

int sip_status_explain(FILE *f, unsigned code)
{
	const struct sip_status *st;

	if (!f)
		return EINVAL;
	st = sip_status_lookup(code);
	if (!st)
		return ENOENT;
	if (st->code != code)
		fprintf(f, "%u is not a registered response code; a receiver understands it as %u %s, %s "
			   "(RFC 3261 8.1.3.2).\n",
			code, st->code, st->reason,
			st->code == 183 ? "as every provisional code it does not know" : "the x00 of its class");
	status_print(f, st);
	return ferror(f) ? EIO : 0;
}
