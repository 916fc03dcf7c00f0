// Wide output tables scroll inside their own box; their caption moves above the
// box, so that a caption is never cut off or scrolled away (see book.css).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".cell_output table").forEach(function (table) {
    if (table.parentElement && table.parentElement.classList.contains("fgvc-table-scroll")) {
      return;
    }
    var box = document.createElement("div");
    box.className = "fgvc-table-scroll";
    table.parentNode.insertBefore(box, table);
    box.appendChild(table);
    var caption = table.querySelector(":scope > caption");
    if (caption) {
      var text = document.createElement("p");
      text.className = "fgvc-table-caption";
      text.innerHTML = caption.innerHTML;
      box.parentNode.insertBefore(text, box);
      caption.remove();
    }
  });
});
